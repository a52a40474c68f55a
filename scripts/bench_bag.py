"""Benchmark rhas_bag against the live node on the same recording (not a test): prints a Markdown table.

  .venv/bin/python scripts/bench_bag.py VIDEO [--frames 400] [--fps 10] [--threads 2]

VIDEO (e.g. OpenCV's vtest.avi from Debian's opencv-doc) becomes a bag of raw rgb8 frames at
--fps with a referring text recorded before the first. Both runs use the same parameters: the
tiny CLIP (64 px, as bench_node's ``tiny``), a HopaDIFF with the small.yaml architecture and
random weights, the HOG detector, every frame sampled (sample_fps = --fps). rhas_bag processes
every frame as fast as it can; the live node gets the bag played over DDS at the recorded rate
(as `ros2 bag play` would) and processes what its latest-wins queue keeps.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
TEXT = "the person on the left"


def make_assets(root: Path, video: Path, frames: int, fps: float) -> Path:
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header, String

    import hopadiff
    from hopadiff.config import load_config
    from hopadiff.features.tiny import make_tiny_clip
    from rhas_ros.bag.output import typestore
    from rhas_ros.conversions import ns_to_stamp

    make_tiny_clip(root / "clip", hidden=64, image_size=64, patch=8, projection=64)
    cfg = load_config(ROOT / "config" / "hopadiff" / "small.yaml", ["model.feature_dim=64"])
    hopadiff.save_checkpoint(root / "model.pt", hopadiff.HopaDIFF(cfg.model), cfg, [f"a{i}" for i in range(8)])
    store = typestore()
    cap = cv2.VideoCapture(str(video))
    t0, period = 1_700_000_000 * 10**9, round(1e9 / fps)
    with Writer(root / "bag", version=9) as w:
        text = w.add_connection("/referring_text", "std_msgs/msg/String", typestore=store)
        image = w.add_connection("/image", "sensor_msgs/msg/Image", typestore=store)
        w.write(text, t0 - 1, serialize_message(String(data=TEXT)))
        for k in range(frames):
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            msg = Image(header=Header(stamp=ns_to_stamp(t0 + k * period), frame_id="camera"), height=rgb.shape[0],
                        width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3, data=rgb.tobytes())  # fmt: skip
            w.write(image, t0 + k * period, serialize_message(msg))
    return root / "bag"


def params(root: Path, fps: float, threads: int) -> dict:
    return {"checkpoint": str(root / "model.pt"), "backbone": "clip", "backbone_model": str(root / "clip"),
            "local_files_only": True, "device": "cpu", "sample_fps": fps, "torch_threads": threads}  # fmt: skip


def as_args(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        out += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return out


def run_bag(root: Path, values: dict) -> dict:
    t = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "rhas_ros.bag.cli", str(root / "bag"), "-o", str(root / "out"), "-q",
                          "--overwrite", *as_args(values)], capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.monotonic() - t
    m = re.search(r"frames +(\d+) read on \S+, (\d+) processed", res.stdout)
    fps = float(re.search(r"([0-9.]+) processed frames/s", res.stdout).group(1))
    return {"read": int(m.group(1)), "processed": int(m.group(2)), "fps": fps, "wall": wall}


def run_live(root: Path, values: dict, fps: float) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from rhas_msgs.msg import TrackedPersonArray
    from rhas_ros import qos

    domain = 90 + os.getpid() % 40
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    node = subprocess.Popen([sys.executable, "-m", "rhas_ros.node", "--ros-args", "--params-file",
                             str(ROOT / "config" / "rhas.yaml"), *as_args({**values, "autostart": True,
                             "image_qos": "reliable"})], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    n = rclpy.create_node("bench_player", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(n)
    tracks = []
    n.create_subscription(TrackedPersonArray, "tracked_persons", tracks.append, 100)
    pub_img = n.create_publisher(Image, "image", qos.image_qos("reliable", 10))
    pub_txt = n.create_publisher(String, "referring_text", qos.latched())
    try:
        end = time.monotonic() + 120
        while pub_img.get_subscription_count() == 0 and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.1)
        time.sleep(1.0)
        with Reader(root / "bag") as r:
            msgs = [(c.topic, deserialize_message(raw, String if c.topic == "/referring_text" else Image))
                    for c, _, raw in r.messages()]  # fmt: skip
        start = time.monotonic()
        sent = 0
        for topic, msg in msgs:
            if topic == "/referring_text":
                pub_txt.publish(msg)
                continue
            due = start + sent / fps
            while time.monotonic() < due:
                ex.spin_once(timeout_sec=max(0.0, min(0.005, due - time.monotonic())))
            pub_img.publish(msg)
            sent += 1
        played = time.monotonic() - start
        end = time.monotonic() + 10
        while time.monotonic() < end:  # the last frames in flight
            ex.spin_once(timeout_sec=0.05)
        return {"read": sent, "processed": len(tracks), "fps": len(tracks) / played, "wall": played}
    finally:
        node.terminate()
        node.wait(timeout=30)
        n.destroy_node()
        rclpy.try_shutdown(context=ctx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", type=Path)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--fps", type=float, default=10.0, help="the recording's frame rate (vtest.avi: 10)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_assets(root, args.video, args.frames, args.fps)
        values = params(root, args.fps, args.threads)
        bag = run_bag(root, values)
        live = run_live(root, values, args.fps)
    print(f"# {args.video.name}: {bag['read']} frames at {args.fps:g} fps, tiny CLIP + small.yaml HopaDIFF, hog, "
          f"torch threads {args.threads}\n")  # fmt: skip
    print("| run | frames in | processed | dropped | processed frames/s | wall s |")
    print("|---|---|---|---|---|---|")
    for name, r in (("rhas_bag (every frame, as fast as it goes)", bag),
                    (f"rhas_node, the bag played at {args.fps:g} fps over DDS", live)):  # fmt: skip
        print(f"| {name} | {r['read']} | {r['processed']} | {r['read'] - r['processed']} | {r['fps']:.2f} | "
              f"{r['wall']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
