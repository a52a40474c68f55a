"""Drives a running rhas_node from a separate process and reports what it saw as JSON.

  python node_client.py SCENARIO CLIP_DIR [--text TEXT]
Scenarios: play (frames + text + persons, collect outputs), clear, malformed, compressed,
flood, backwards, lifecycle CHECKPOINT. Used by test_node_dds.py; the node runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header, String

from rhas_msgs.msg import ActionSegment, ActionSegmentArray, TrackedPerson, TrackedPersonArray
from rhas_ros.conversions import ns_to_stamp, stamp_to_ns
from rhas_ros.tools.player import ClipPlayer

FRAME_GAP = 0.03  # s between frames: slower than the test node processes one, so none is dropped
T0 = 1_000_000_000_000  # camera clock start, ns (``--t0`` moves it, so scenarios on one node never go backwards)


class Client(ClipPlayer):
    """The demo's clip player plus the extra publishers/subscriptions the tests look at."""

    def __init__(self, clip_dir: Path, reliable_images: bool = False):
        img_qos = (
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE) if reliable_images else qos_profile_sensor_data
        )
        super().__init__(clip_dir / "extract.json", 0, img_qos, "head_camera", "rhas_test_client", verbose=False)
        self.texts = [p["text"] for p in self.persons]
        self.t0 = T0
        self.photo = None  # an RGB image sent instead of the clip's frames (--photo)
        self.cimg_pub = self.create_publisher(CompressedImage, "image/compressed", img_qos)
        self.diags, self.debug_images = [], []  # self.tracks: the player's tracked_persons messages
        self.refused = 0  # samples the middleware refused during floods (see tolerate_refusal)
        self.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)
        self.create_subscription(Image, "/rhas_node/debug_image", self.debug_images.append, 10)

    def wait_for_node(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout

        def subscribed():
            return self.image_pub.get_subscription_count() + self.cimg_pub.get_subscription_count() > 0

        while time.monotonic() < end and (not subscribed() or not self.node_labels):
            self.spin_for(0.1)
        if not self.node_labels:
            raise SystemExit("node did not come up (no action_labels)")

    def stamp(self, i: int, period_ns: int = 100_000_000) -> Time:
        return ns_to_stamp(self.t0 + i * period_ns)

    def wait_processed(self, i: int, timeout: float = 15.0) -> None:
        """Spin until the node has processed frame ``i`` (its tracked_persons carries that stamp; the
        frame's segments are published right after it), instead of sleeping a fixed time."""
        want = stamp_to_ns(self.stamp(i))
        end = time.monotonic() + timeout
        while time.monotonic() < end and not any(stamp_to_ns(m.header.stamp) >= want for m in self.tracks):
            self.spin_for(0.02)
        self.spin_for(0.2)

    def send_frame(self, i: int, stamp: Time | None = None, frame=None) -> None:
        self.publish_frame(i, stamp_to_ns(stamp or self.stamp(i)), self.photo if frame is None else frame)
        self.spin_for(0.005)

    def raw(self, rgb, header: Header) -> Image:
        return Image(
            header=header, height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3,
            data=rgb.tobytes(),
        )  # fmt: skip

    def tolerate_refusal(self, publish, *args) -> None:
        """The middleware may refuse a sample while its buffers are full (Fast DDS raises "cannot
        publish data" on a loaded machine). In a flood that is back-pressure on this client, not
        something the node did: counted in ``refused``, the flood goes on."""
        try:
            publish(*args)
        except Exception as e:  # rclpy's RCLError is not public API
            if "publish" not in str(e):
                raise
            self.refused += 1

    def send_text(self, text: str) -> None:
        self.text_pub.publish(String(data=text))
        self.spin_for(0.3)

    def wait_all_final(self, timeout: float = 20.0) -> None:
        """Spin until every segment received so far is FINAL in its latest message (the node closes
        them on its worker thread, after the event that ends them), or until ``timeout``."""

        def open_ids():
            status = {}
            for m in self.received:
                for s in m.segments:
                    status[s.segment_id] = s.status
            return [sid for sid, st in status.items() if st != ActionSegment.STATUS_FINAL]

        end = time.monotonic() + timeout
        while time.monotonic() < end and open_ids():
            self.spin_for(0.05)
        self.spin_for(0.2)

    def report(self, **extra) -> dict:
        def seg(m):
            return {
                "stamp": m.header.stamp.sec * 10**9 + m.header.stamp.nanosec,
                "frame_id": m.header.frame_id,
                "person_id": m.person_id,
                "query": m.query,
                "conf": m.grounding_confidence,
                "window": [
                    m.window_start.sec * 10**9 + m.window_start.nanosec,
                    m.window_end.sec * 10**9 + m.window_end.nanosec,
                ],
                "segments": [
                    {
                        "id": s.segment_id,
                        "rev": s.revision,
                        "status": s.status,
                        "class_id": s.class_id,
                        "label": s.label,
                        "conf": s.confidence,
                        "start": s.start.sec * 10**9 + s.start.nanosec,
                        "end": s.end.sec * 10**9 + s.end.nanosec,
                    }
                    for s in m.segments
                ],
            }

        diag = {}
        for d in self.diags:
            for st in d.status:
                diag.update({kv.key: kv.value for kv in st.values})
        return {
            "segments": [seg(m) for m in self.received],
            "targets": [m.target_person_id for m in self.tracks],
            "queries": sorted({m.query for m in self.tracks}),
            "track_ids": sorted({p.person_id for m in self.tracks for p in m.persons}),
            "tracked": [
                {
                    "stamp": stamp_to_ns(m.header.stamp),
                    "persons": [{"id": p.person_id, "seen": p.frames_since_seen == 0} for p in m.persons],
                }
                for m in self.tracks
            ],
            "labels": self.node_labels,
            "diagnostics": diag,
            "debug_images": [[m.width, m.height, m.encoding] for m in self.debug_images[:3]],
            **extra,
        }


def adversarial(c: Client, text: str) -> dict:
    """The cases that used to kill or flood the node, one after another, then good frames."""
    h = Header(stamp=c.stamp(0), frame_id="head_camera")

    def img(w, hgt, enc="rgb8", step=None, data=None, stamp=None):
        ch = {"rgb8": 3, "yuv422": 2, "yuyv": 2, "uyvy": 2}[enc]
        step = w * ch if step is None else step
        header = Header(stamp=stamp or h.stamp, frame_id="head_camera")
        return Image(header=header, height=hgt, width=w, encoding=enc, step=step, data=data or bytes(step * hgt))

    c.send_text("\x1b[31mthe tall\x1b[0m person\x07 " + text)  # control characters in a query
    for n, (w, hgt) in enumerate([(1, 1), (20, 20), (63, 127)]):  # smaller than HOG's window
        c.image_pub.publish(img(w, hgt, stamp=c.stamp(1 + n)))
        c.spin_for(0.1)
    for n, enc in enumerate(["yuv422", "yuyv", "uyvy"]):  # odd width: OpenCV raised cv2.error
        c.image_pub.publish(img(5, 4, enc, step=12, stamp=c.stamp(10 + n)))
        c.spin_for(0.1)
    bad = Time(sec=2**31 - 3, nanosec=3_000_000_000)  # nanosec >= 1e9
    c.image_pub.publish(c.raw(c.frames[0], Header(stamp=bad, frame_id="head_camera")))
    c.image_pub.publish(img(4, 4, enc="rgb8", stamp=c.stamp(20)))
    c.image_pub.publish(c.raw(c.frames[0], Header(stamp=Time(), frame_id="head_camera")))  # zero stamps...
    c.image_pub.publish(c.raw(c.frames[0], Header(stamp=Time(), frame_id="head_camera")))  # ... repeated
    huge_encoding = "x" * 10_000
    c.image_pub.publish(Image(header=h, height=2, width=2, encoding=huge_encoding, step=6, data=bytes(12)))
    c.spin_for(0.3)
    # Stamps alternating by 1 s at full speed: every second frame goes backwards.
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < 2.0:
        ns = 2_000_000_000_000 + (i % 2) * 1_000_000_000 + i
        c.tolerate_refusal(
            c.image_pub.publish, c.raw(c.frames[i % len(c.frames)], Header(stamp=ns_to_stamp(ns), frame_id="x"))
        )
        i += 1
        rclpy.spin_once(c, timeout_sec=0)
    alternated = i
    for t in range(2000):  # a text flood
        c.tolerate_refusal(c.text_pub.publish, String(data=f"flood {t % 3}"))
    c.spin_for(0.5)
    c.send_text(text)
    c.t0 = 3_000_000_000_000  # then good frames on a fresh clock
    c.tracks.clear()
    for k in range(40):
        c.send_frame(k)
        c.spin_for(FRAME_GAP)
    c.wait_processed(39)
    c.spin_for(1.2)  # one diagnostics period
    return {"alternated": alternated, "text": text, "refused": c.refused}


def lifecycle(node, good_checkpoint: str) -> list:
    """Drive rhas_node's transitions: configure with a missing checkpoint must fail cleanly,
    configure after fixing the parameter must succeed, then activate, deactivate, cleanup."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    def call(client, request, attempts: int = 1):
        """One service call. DDS may match a service's request path before its response path,
        so a reply can be lost right after discovery: idempotent warm-up calls retry."""
        assert client.wait_for_service(timeout_sec=30), f"service {client.srv_name} not available"
        for _ in range(attempts):
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=10)
            if future.result() is not None:
                return future.result()
        raise RuntimeError(f"no reply from {client.srv_name} after {attempts} attempt(s)")

    change = node.create_client(ChangeState, "/rhas_node/change_state")
    get = node.create_client(GetState, "/rhas_node/get_state")
    setp = node.create_client(SetParameters, "/rhas_node/set_parameters")
    # Warm-up: both directions of every service matched before the real transitions. Activating
    # an unconfigured node is refused without changing anything, so it can be repeated safely.
    call(get, GetState.Request(), attempts=5)
    refused = call(change, ChangeState.Request(transition=Transition(id=Transition.TRANSITION_ACTIVATE)), attempts=5)
    assert not refused.success
    steps = []

    def transition(tid, name):
        ok = call(change, ChangeState.Request(transition=Transition(id=tid))).success
        steps.append([name, ok, call(get, GetState.Request()).current_state.label])

    transition(Transition.TRANSITION_CONFIGURE, "configure (missing checkpoint)")
    value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=good_checkpoint)
    steps.append(
        [
            "set checkpoint",
            call(setp, SetParameters.Request(parameters=[Parameter(name="checkpoint", value=value)]))
            .results[0]
            .successful,
            "",
        ]
    )
    transition(Transition.TRANSITION_CONFIGURE, "configure")
    transition(Transition.TRANSITION_ACTIVATE, "activate")
    transition(Transition.TRANSITION_DEACTIVATE, "deactivate")
    transition(Transition.TRANSITION_CLEANUP, "cleanup")
    return steps


def contract(c: Client, node_pid: int) -> dict:
    """Every way a segment can end, in turn: the query changes, the target's track is lost (the
    target switches), the query is cleared, the node is deactivated, and shut down (SIGINT).
    ``marks``: how many messages had arrived right after each event was handled."""
    import os
    import signal

    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    change = c.create_client(ChangeState, "/rhas_node/change_state")
    assert change.wait_for_service(timeout_sec=30)

    def transition(tid):
        future = change.call_async(ChangeState.Request(transition=Transition(id=tid)))
        rclpy.spin_until_future_complete(c, future, timeout_sec=30)
        assert future.result() is not None and future.result().success, f"transition {tid} failed"
        c.spin_for(0.5)

    marks = {}

    def play(first, n):
        for i in range(first, first + n):
            c.send_frame(i)
            c.spin_for(FRAME_GAP)
        c.wait_processed(first + n - 1)

    c.send_text(c.texts[0])
    play(0, 24)
    c.send_text(c.texts[1])  # a changed query
    c.wait_all_final()
    marks["query_changed"] = len(c.received)
    play(24, 16)
    target = next(t for t in reversed(c.tracks) if t.target_person_id >= 0).target_person_id
    c.hidden = {target}  # the target leaves: another person becomes the target, the track is lost
    play(40, 16)
    c.hidden = set()
    marks["target_lost"] = len(c.received)
    c.send_text("")  # cleared
    c.wait_all_final()
    marks["query_cleared"] = len(c.received)
    play(56, 8)
    c.send_text(c.texts[0])
    play(64, 20)
    transition(Transition.TRANSITION_DEACTIVATE)
    c.wait_all_final()
    marks["deactivated"] = len(c.received)
    transition(Transition.TRANSITION_ACTIVATE)
    c.spin_for(0.5)
    play(84, 20)
    os.kill(node_pid, signal.SIGINT)
    end = time.monotonic() + 30
    while time.monotonic() < end:  # until the node process is gone (its closing messages sent)
        c.spin_for(0.2)
        try:
            os.kill(node_pid, 0)
        except ProcessLookupError:
            break
    c.spin_for(1.0)
    marks["shutdown"] = len(c.received)
    return {"marks": marks, "sent": [c.t0 + i * 100_000_000 for i in range(104)]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("clip_dir", type=Path)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--text", default=None)
    ap.add_argument("--t0", type=int, default=T0, help="camera clock of frame 0, ns")
    ap.add_argument("--photo", default=None, help="send this image as every frame instead of the clip")
    ap.add_argument("--node-pid", type=int, default=0, help="contract: the node process to stop with SIGINT")
    args = ap.parse_args()
    rclpy.init()
    c = Client(args.clip_dir, reliable_images=args.scenario != "flood")
    c.t0 = args.t0
    if args.photo:
        c.photo = cv2.cvtColor(cv2.imread(args.photo), cv2.COLOR_BGR2RGB)
    extra = {}
    try:
        if args.scenario != "lifecycle":
            c.wait_for_node()
        text = args.text if args.text is not None else c.texts[0]
        if args.scenario == "contract":
            extra = contract(c, args.node_pid)
        elif args.scenario == "behavior":  # play with a text; collect what rhas_behavior says, with times
            said, seen = [], []
            c.create_subscription(String, "said", lambda m: said.append([time.monotonic(), m.data]), 100)
            c.create_subscription(
                ActionSegmentArray, "action_segments",
                lambda m: seen.append([time.monotonic(), [s.label for s in m.segments if s.confidence > 0]]), 100,
            )  # fmt: skip
            c.send_text(text)
            for i in range(args.frames):
                c.send_frame(i)
                c.spin_for(FRAME_GAP)
            c.wait_processed(args.frames - 1)
            c.spin_for(2.0)
            extra = {"said": said, "seen": seen}
        elif args.scenario == "frames":  # camera frames and boxes only (the text comes from elsewhere)
            for i in range(args.frames):
                c.send_frame(i)
                c.spin_for(FRAME_GAP)
            c.wait_processed(args.frames - 1)
        elif args.scenario == "persons_stamps":
            c.send_text(text)
            for i, offset in enumerate([0] * 16 + [20_000_000] * 8 + [1_000_000_000] * 8):
                c.publish_frame(i, stamp_to_ns(c.stamp(i)), c.photo, persons_offset_ns=offset)
                c.spin_for(FRAME_GAP)
            c.wait_processed(31)
            c.spin_for(1.5)  # one more diagnostics message
        elif args.scenario in ("play", "clear", "backwards"):
            c.send_text(text)
            for i in range(args.frames):
                c.send_frame(i)
                c.spin_for(FRAME_GAP)
            c.wait_processed(args.frames - 1)
            if args.scenario == "clear":
                extra["before_clear"] = len(c.received)
                c.send_text("")
                c.wait_all_final()
                extra["cleared_at"] = len(c.received)
                for i in range(args.frames, 2 * args.frames):
                    c.send_frame(i)
                    c.spin_for(FRAME_GAP)
                c.wait_processed(2 * args.frames - 1)
            if args.scenario == "backwards":
                extra["before_loop"] = len(c.received)
                c.tracks.clear()
                for i in range(args.frames):  # the bag loops: stamps restart
                    c.send_frame(i)
                    c.spin_for(FRAME_GAP)
                c.wait_processed(args.frames - 1)
        elif args.scenario == "malformed":
            c.send_text(text)
            good = c.frames[0]
            h = Header(stamp=c.stamp(0), frame_id="head_camera")
            bad = [
                Image(header=h, height=240, width=320, encoding="rgb8", step=100, data=good.tobytes()),  # wrong step
                Image(header=h, height=240, width=320, encoding="bayer_weird16", step=640, data=bytes(240 * 640)),
                Image(header=h, height=0, width=0, encoding="rgb8", step=0, data=b""),
                Image(header=h, height=4320, width=7680, encoding="mono8", step=7680, data=bytes(7680 * 4320)),  # 8K
                Image(header=h, height=240, width=320, encoding="rgb8", step=960, data=good.tobytes()[:1000]),  # short
            ]
            for j, msg in enumerate(bad):
                msg.header.stamp = c.stamp(j * 10)
                c.image_pub.publish(msg)
                c.spin_for(0.3)
            for t in ["", "x" * 1_000_000, "der ältere Mann im roten Hemd 👴🏻 — 红衬衫", f"  {text}\t\n"]:
                c.send_text(t)
                if len(t) > 1000:  # a 1 MB sample takes a while to fragment across; the latched
                    c.spin_for(1.5)  # writer keeps only the newest text, so let it arrive first
            extra["text"] = text
            for i in range(60, 60 + args.frames):
                c.send_frame(i)
                c.spin_for(FRAME_GAP)
            c.wait_processed(60 + args.frames - 1)
        elif args.scenario == "compressed":
            c.send_text(text)
            for i in range(args.frames):
                _, jpg = cv2.imencode(".jpg", cv2.cvtColor(c.frames[i], cv2.COLOR_RGB2BGR))
                data = jpg.tobytes()
                if i % 5 == 2:
                    data = data[: len(data) // 3] + b"\x00garbage"  # corrupt JPEG
                persons_header = Header(stamp=c.stamp(i), frame_id="head_camera")
                c.persons_pub.publish(
                    TrackedPersonArray(
                        header=persons_header,
                        persons=[
                            TrackedPerson(
                                person_id=1, roi=RegionOfInterest(x_offset=0, y_offset=0, width=320, height=240)
                            )
                        ],
                    )
                )
                c.cimg_pub.publish(CompressedImage(header=persons_header, format="jpeg", data=data))
                c.spin_for(FRAME_GAP)
            c.wait_processed(args.frames - 1)
            c.spin_for(1.0)  # one diagnostics period after the last frame
        elif args.scenario == "lifecycle":
            extra["steps"] = lifecycle(c, args.text)
        elif args.scenario == "flood":
            c.send_text(text)
            start = time.monotonic()
            i = 0
            while time.monotonic() - start < 5.0:  # 100 Hz
                c.tolerate_refusal(c.send_frame, i, c.stamp(i, 10_000_000))
                i += 1
                c.spin_for(max(0.0, start + i * 0.01 - time.monotonic()))
            c.spin_for(2.5)
            extra["sent"], extra["refused"] = i, c.refused
        elif args.scenario == "adversarial":
            extra.update(adversarial(c, text))
        elif args.scenario == "boxflood":
            c.send_text(text)
            for i in range(30):  # 10,000 boxes a frame, ids changing every frame
                h = Header(stamp=c.stamp(i), frame_id="head_camera")
                boxes = [
                    TrackedPerson(
                        person_id=i * 10_000 + j,
                        detection_confidence=0.5,
                        roi=RegionOfInterest(x_offset=j % 300, y_offset=(j // 300) % 200, width=20, height=40),
                    )
                    for j in range(10_000)
                ]
                c.persons_pub.publish(TrackedPersonArray(header=h, persons=boxes))
                c.image_pub.publish(c.raw(c.frames[i % len(c.frames)], h))
                c.spin_for(0.15)
            for i in range(30, 30 + args.frames):  # then ordinary frames and boxes again
                c.send_frame(i)
                c.spin_for(FRAME_GAP)
            c.wait_processed(30 + args.frames - 1)
            c.spin_for(1.2)  # one diagnostics period
        else:
            raise SystemExit(f"unknown scenario {args.scenario}")
        print(json.dumps(c.report(**extra)))
        return 0
    finally:
        c.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
