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

import cv2
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
        record_debug: bool = False,
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
        self.image_pub = self.create_publisher(Image, "image", image_qos or qos.reliable())
        self.persons_pub = self.create_publisher(TrackedPersonArray, "persons", qos.reliable())
        self.text_pub = self.create_publisher(String, "referring_text", qos.latched())
        self.received: list[ActionSegmentArray] = []
        self.play_index = 0  # which replay of the clip is running
        self.first_play: dict[int, int] = {}  # segment id -> the replay that first published it
        self.node_labels: list[str] = []
        self.tracks: list[TrackedPersonArray] = []
        self.clip_person: dict[int, int] = {}  # the node's person id -> index of the clip's person
        self.create_subscription(ActionSegmentArray, "action_segments", self._on_segments, 100)
        self.create_subscription(TrackedPersonArray, "tracked_persons", self._on_tracks, 100)
        self.debug_frames: list[np.ndarray] = []  # BGR frames of ~/debug_image during the first replay
        if record_debug:
            self.create_subscription(Image, "/rhas_node/debug_image", self._on_debug, 10)
        self.create_subscription(ActionLabels, "action_labels", self._on_labels, qos.latched())

    def stamp_ns(self, i: int) -> int:
        return T0_NS + round(i * 1e9 / self.fps)

    def _on_labels(self, msg: ActionLabels) -> None:
        self.node_labels = list(msg.labels)

    def _on_debug(self, msg: Image) -> None:
        if self.play_index == 0:
            self.debug_frames.append(np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3).copy())

    def _on_tracks(self, msg: TrackedPersonArray) -> None:
        """Which of the clip's persons each of the node's person ids is: its box is the one published."""
        self.tracks.append(msg)
        t = round((stamp_to_ns(msg.header.stamp) - T0_NS) * self.fps / 1e9) % len(self.frames)
        for p in msg.persons:
            if p.frames_since_seen == 0:
                box = [p.roi.x_offset, p.roi.y_offset, p.roi.width, p.roi.height]
                for q, person in enumerate(self.persons):
                    if t >= 0 and person["boxes"][t] and list(person["boxes"][t]) == box:
                        self.clip_person.setdefault(p.person_id, q)

    def _on_segments(self, msg: ActionSegmentArray) -> None:
        self.received.append(msg)
        for s in msg.segments:
            self.first_play.setdefault(s.segment_id, self.play_index)
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

    def wait_for_node(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (not self.node_labels or self.image_pub.get_subscription_count() == 0) and time.monotonic() < deadline:
            self.spin_for(0.1)
        if not self.node_labels:
            raise SystemExit(f"rhas_node did not come up within {timeout:g} s (no action_labels)")

    def play(self, rate: float, persons: list[int] | None = None, on_frame=None) -> None:
        """Play the clip once per person in ``persons`` (default: the one given at start), each time
        with that person's referring text. Every replay starts the camera clock again, as a bag
        loop does: the node closes what it published and starts afresh."""
        self.wait_for_node()
        for n, person in enumerate([self.person] if persons is None else persons):
            self.play_index, self.person, self.text = n, person, self.persons[person]["text"]
            print(
                f"referring text: {self.text!r} (person {person + 1} of {len(self.persons)}); "
                f"playing {len(self.frames)} frames at {rate:g} frames/s"
            )
            self.text_pub.publish(String(data=self.text))
            self.spin_for(0.5)
            for i in range(len(self.frames)):
                self.publish_frame(i)
                self.spin_for(1.0 / rate)
                if on_frame is not None:
                    on_frame(n, i)
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

    def latest(self) -> dict[int, tuple[int, object]]:
        """segment id -> (person id, the highest revision received)."""
        latest = {}
        for m in self.received:
            for s in m.segments:
                if s.segment_id not in latest or s.revision >= latest[s.segment_id][1].revision:
                    latest[s.segment_id] = (m.person_id, s)
        return latest

    def open_segments(self) -> int:
        """Segments whose latest revision is still ONGOING (the contract says: none, in the end)."""
        return sum(s.status != s.STATUS_FINAL for _, s in self.latest().values())

    def published_probs(self, play: int | None = None, person: int | None = None) -> np.ndarray:
        """(C, T): per class and clip frame, the confidence of the published segments (latest
        revisions, retractions dropped) of one replay, for the node's person ids that are the
        clip's person ``person`` (0-based; None: everyone)."""
        T, C = len(self.frames), len(self.labels)
        probs = np.zeros((C, T), np.float32)
        for sid, (pid, s) in self.latest().items():
            if (play is not None and self.first_play.get(sid) != play) or (
                person is not None and self.clip_person.get(pid) != person
            ):
                continue
            if s.confidence <= 0:
                continue
            a, b = (round((stamp_to_ns(x) - T0_NS) * self.fps / 1e9) for x in (s.start, s.end))
            a, b = max(0, a), min(T - 1, b)
            probs[s.class_id, a : b + 1] = np.maximum(probs[s.class_id, a : b + 1], s.confidence)
        return probs

    def ground_truth(self, person: int) -> np.ndarray:
        """(C, T) multi-hot labels of one person of the clip."""
        gt = np.zeros((len(self.labels), len(self.frames)), bool)
        for t, classes in enumerate(self.persons[person]["labels"]):
            gt[list(classes), t] = True
        return gt

    def score(self, play: int = 0, person: int | None = None) -> dict:
        """One replay: who the node segmented, and the frame accuracy of its published segments
        against the referred person's ground truth."""
        person = self.person if person is None else person
        in_play = [m for m in self.received if m.query and m.segments and any(
            self.first_play.get(s.segment_id) == play for s in m.segments)]  # fmt: skip
        grounded = [self.clip_person.get(m.person_id) for m in in_play]
        probs = self.published_probs(play, person)
        gt = self.ground_truth(person)
        T = len(self.frames)
        covered = probs.max(axis=0) > 0
        hit = int(((probs > 0) & gt).any(axis=0)[covered].sum())
        chance = np.mean([len(x) / len(self.labels) for x in self.persons[person]["labels"]])
        return {
            "referred_person": person + 1,
            "grounded_windows": 100.0 * sum(q == person for q in grounded) / max(len(grounded), 1),
            "grounded_persons": sorted({q + 1 for q in grounded if q is not None}),
            "frames": T,
            "covered": int(covered.sum()),
            "hit_accuracy": 100.0 * hit / max(int(covered.sum()), 1),
            "hit_accuracy_all": 100.0 * hit / T,
            "chance": 100 * chance,
            "messages": sum(
                1 for m in self.received if any(self.first_play.get(s.segment_id) == play for s in m.segments)
            ),
        }


def deactivate(node: Node, name: str = "/rhas_node", timeout: float = 30.0) -> bool:
    """Deactivate the node through its lifecycle service (as `ros2 lifecycle set NAME deactivate`)."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    client = node.create_client(ChangeState, f"{name}/change_state")
    if not client.wait_for_service(timeout_sec=timeout):
        return False
    future = client.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_DEACTIVATE)))
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    return future.result() is not None and future.result().success


def write_pictures(player: ClipPlayer, persons: list[int], out: Path) -> list[Path]:
    """timeline.png (per referred person: ground truth vs the node's published segments) and
    annotated.gif (the node's ~/debug_image stream of the first replay)."""
    from hopadiff.evaluate import timeline_png

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n, person in enumerate(persons):
        probs = player.published_probs(n, person)
        path = out / f"timeline_person{person + 1}.png"
        title = f"person {person + 1}: {player.persons[person]['text']!r}"
        timeline_png(path, title, probs, player.ground_truth(person), player.labels, True, fps=player.fps)
        rows.append(cv2.imread(str(path)))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    written = [out / "timeline.png"]
    cv2.imwrite(str(written[0]), sheet)
    if player.debug_frames:
        from PIL import Image as PILImage

        frames = [PILImage.fromarray(f[:, :, ::-1]) for f in player.debug_frames[::2]]  # BGR -> RGB, every 2nd
        written.append(out / "annotated.gif")
        frames[0].save(written[1], save_all=True, append_images=frames[1:], duration=round(2000 / player.fps), loop=0)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rhas_player", description=__doc__)
    ap.add_argument("--clip", type=Path, required=True, help="extract manifest of the clip (hopadiff-synth --video)")
    ap.add_argument("--person", type=int, default=None, help="only this person (0-based); default: each in turn")
    ap.add_argument("--rate", type=float, default=20.0, help="frames per second of wall time")
    ap.add_argument("--pictures", type=Path, default=None, help="write timeline.png and annotated.gif here")
    ap.add_argument("--no-deactivate", action="store_true", help="leave the node active at the end")
    args = ap.parse_args(argv)
    with rclpy.init():
        player = ClipPlayer(args.clip, args.person or 0, record_debug=args.pictures is not None)
        persons = list(range(len(player.persons))) if args.person is None else [args.person]
        try:
            player.play(args.rate, persons)
            deactivated = False if args.no_deactivate else deactivate(player)
            player.spin_for(1.0)
            results = [player.score(n, p) for n, p in enumerate(persons)]
            still_open = player.open_segments()
            pictures = write_pictures(player, persons, args.pictures) if args.pictures else []
        finally:
            player.destroy_node()
    print()
    print("| referred person | grounded to (share of windows) | frames covered | accuracy, covered frames | "
          "accuracy, all frames | chance |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| #{r['referred_person']} | #{', #'.join(map(str, r['grounded_persons'])) or '-'} "
            f"({r['grounded_windows']:.0f} % on #{r['referred_person']}) | {r['covered']} of {r['frames']} | "
            f"{r['hit_accuracy']:.1f} % | {r['hit_accuracy_all']:.1f} % | {r['chance']:.1f} % |"
        )
    print()
    print(f"ActionSegmentArray messages received: {len(player.received)}")
    if not args.no_deactivate:
        print(f"node deactivated: {'yes' if deactivated else 'NO'}; segments left ONGOING: {still_open} (must be 0)")
    print("accuracy: a frame counts when a published action of the referred person is in its ground truth")
    for path in pictures:
        print(f"wrote {path}")
    return 0 if (args.no_deactivate or (deactivated and still_open == 0)) else 1


if __name__ == "__main__":
    sys.exit(main())
