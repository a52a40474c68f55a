"""Play a synthetic clip into rhas_node over DDS and print what the node publishes.

  python -m rhas_ros.tools.player --clip demo_out/clips_demo/extract.json [--person 0] [--rate 20]

Publishes the clip's frames on ``image`` (stamps at the clip's frame rate), the boxes of its
persons on ``persons`` (standing in for an upstream detector/tracker) and the referring text
of one person on ``referring_text``; prints every ActionSegmentArray it receives and, at the
end, the frame accuracy of the published segments against the clip's ground truth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header, String

from hopadiff.frames import read_frames
from rhas_msgs.msg import ActionLabels, ActionSegmentArray, TrackedPerson, TrackedPersonArray

from .. import qos
from ..conversions import ns_to_stamp, stamp_to_ns

T0_NS = 1_700_000_000 * 10**9  # camera clock of the first frame


class ClipPlayer(Node):
    """Publishes a clip (frames, person boxes, one person's text) and collects the node's outputs."""

    def __init__(
        self,
        clip_manifest: Path,
        person: int = 0,
        image_qos: QoSProfile | None = None,
        frame_id: str = "camera",
        node_name: str = "rhas_clip_player",
        verbose: bool = True,
    ):
        super().__init__(node_name)
        self.frame_id, self.verbose = frame_id, verbose
        doc = json.loads(clip_manifest.read_text())
        video = doc["videos"][0]
        self.labels = doc["labels"]
        self.frames = read_frames(clip_manifest.parent / video["video"])
        self.fps = float(video.get("fps", 10.0))
        self.persons = video["persons"]
        self.person = person
        self.hidden: set[int] = set()  # person ids (1-based) left out of the persons messages
        self.text = self.persons[person]["text"]
        self.image_pub = self.create_publisher(Image, "image", image_qos or qos.RELIABLE)
        self.persons_pub = self.create_publisher(TrackedPersonArray, "persons", qos.RELIABLE)
        self.text_pub = self.create_publisher(String, "referring_text", qos.LATCHED)
        self.received: list[ActionSegmentArray] = []
        self.node_labels: list[str] = []
        self.create_subscription(ActionSegmentArray, "action_segments", self._on_segments, 100)
        self.create_subscription(ActionLabels, "action_labels", self._on_labels, qos.LATCHED)

    def stamp_ns(self, i: int) -> int:
        return T0_NS + round(i * 1e9 / self.fps)

    def _on_labels(self, msg: ActionLabels) -> None:
        self.node_labels = list(msg.labels)

    def _on_segments(self, msg: ActionSegmentArray) -> None:
        self.received.append(msg)
        if not self.verbose:
            return
        t = (stamp_to_ns(msg.header.stamp) - T0_NS) / 1e9
        w0, w1 = ((stamp_to_ns(s) - T0_NS) / 1e9 for s in (msg.window_start, msg.window_end))
        who = f"person #{msg.person_id}" + (
            f" {msg.query!r} (grounding {msg.grounding_confidence:.2f})" if msg.query else ""
        )
        print(f"[t={t:5.1f} s] {who} window {w0:.1f}-{w1:.1f} s:")
        for s in msg.segments:
            a, b = ((stamp_to_ns(x) - T0_NS) / 1e9 for x in (s.start, s.end))
            state = "final" if s.status == s.STATUS_FINAL else "ongoing"
            line = f"    segment {s.segment_id:3d} r{s.revision} {s.label:<9s} {a:5.1f}-{b:5.1f} s"
            print(f"{line}  p={s.confidence:.2f}  {state}")
        sys.stdout.flush()

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.01)

    def play(self, rate: float) -> None:
        deadline = time.monotonic() + 60
        while (not self.node_labels or self.image_pub.get_subscription_count() == 0) and time.monotonic() < deadline:
            self.spin_for(0.1)
        if not self.node_labels:
            raise SystemExit("rhas_node did not come up within 60 s (no action_labels)")
        print(
            f"referring text: {self.text!r} (person {self.person + 1} of {len(self.persons)}); "
            f"playing {len(self.frames)} frames at {rate:g} frames/s"
        )
        self.text_pub.publish(String(data=self.text))
        self.spin_for(0.5)
        for i in range(len(self.frames)):
            self.publish_frame(i)
            self.spin_for(1.0 / rate)
        self.spin_for(3.0)

    def publish_frame(
        self, i: int, stamp_ns: int | None = None, rgb: np.ndarray | None = None, persons_offset_ns: int = 0
    ) -> None:
        """Frame i of the clip (or ``rgb``) with the clip's person boxes of frame i, stamped ``stamp_ns``
        (the boxes ``persons_offset_ns`` later: an upstream detector with its own clock)."""
        header = Header(stamp=ns_to_stamp(self.stamp_ns(i) if stamp_ns is None else stamp_ns), frame_id=self.frame_id)
        t = i % len(self.frames)
        rgb = self.frames[t] if rgb is None else rgb
        persons_header = Header(
            stamp=ns_to_stamp(stamp_to_ns(header.stamp) + persons_offset_ns), frame_id=self.frame_id
        )
        persons = TrackedPersonArray(header=persons_header)
        for pid, p in enumerate(self.persons, 1):
            if p["boxes"][t] and pid not in self.hidden:
                x, y, w, h = p["boxes"][t]
                persons.persons.append(
                    TrackedPerson(
                        person_id=pid,
                        detection_confidence=1.0,
                        roi=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
                    )
                )
        self.persons_pub.publish(persons)
        self.image_pub.publish(
            Image(
                header=header,
                height=rgb.shape[0],
                width=rgb.shape[1],
                encoding="rgb8",
                step=rgb.shape[1] * 3,
                data=rgb.tobytes(),
            )
        )

    def score(self) -> dict:
        """Frame accuracy of the latest revision of every segment for the referred person."""
        latest = {}
        for m in self.received:
            for s in m.segments:
                if s.segment_id not in latest or s.revision >= latest[s.segment_id][1].revision:
                    latest[s.segment_id] = (m.person_id, s)
        ids = [pid for pid, _ in latest.values()]
        person_id = max(set(ids), key=ids.count) if ids else None
        T = len(self.frames)
        pred = [set() for _ in range(T)]
        for pid, s in latest.values():
            if pid != person_id or s.confidence <= 0:
                continue
            a, b = (round((stamp_to_ns(x) - T0_NS) * self.fps / 1e9) for x in (s.start, s.end))
            for t in range(max(0, a), min(T, b + 1)):
                pred[t].add(s.class_id)
        gt = [set(x) for x in self.persons[self.person]["labels"]]
        covered = [t for t in range(T) if pred[t]]
        hit = sum(bool(pred[t] & gt[t]) for t in covered)
        chance = np.mean([len(g) / len(self.labels) for g in gt])
        return {
            "grounded_person": person_id,
            "referred_person": self.person + 1,
            "frames": T,
            "covered": len(covered),
            "hit_accuracy": 100.0 * hit / max(len(covered), 1),
            "hit_accuracy_all": 100.0 * hit / T,
            "chance": 100 * chance,
            "messages": len(self.received),
        }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rhas_player", description=__doc__)
    ap.add_argument("--clip", type=Path, required=True, help="extract manifest of the clip (hopadiff-synth --video)")
    ap.add_argument("--person", type=int, default=0, help="index of the person whose text is published")
    ap.add_argument("--rate", type=float, default=20.0, help="frames per second of wall time")
    args = ap.parse_args(argv)
    with rclpy.init():
        player = ClipPlayer(args.clip, args.person)
        try:
            player.play(args.rate)
            r = player.score()
        finally:
            player.destroy_node()
    print()
    print("| result | value |\n|---|---|")
    print(f"| ActionSegmentArray messages received | {r['messages']} |")
    print(f"| grounded person / referred person | #{r['grounded_person']} / #{r['referred_person']} |")
    print(f"| frames covered by segments | {r['covered']} of {r['frames']} |")
    print(
        f"| frame accuracy on covered frames (a published action is in the ground truth) | {r['hit_accuracy']:.1f} % |"
    )
    print(f"| frame accuracy on all frames (uncovered frames count as wrong) | {r['hit_accuracy_all']:.1f} % |")
    print(f"| chance level (random action) | {r['chance']:.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
