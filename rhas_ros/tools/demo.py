"""rhas_demo: the README's main job. Builds (once) a small backbone and HopaDIFF checkpoint on
synthetic clips, starts rhas_node in its own process, plays a held-out clip into it from
another process over DDS, and prints what the node publishes with its accuracy.

Runs on an isolated DDS domain (ROS_DOMAIN_ID from the environment, else a free one in
100-199, discovery on localhost only).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="rhas_demo", description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("demo_out"), help="cache folder for the demo assets")
    ap.add_argument(
        "--person", type=int, default=None, help="only this person of the clip (0-2); default: each in turn"
    )
    ap.add_argument("--everyone", action="store_true", help="segment every person instead (everyone mode)")
    ap.add_argument("--no-behavior", action="store_true", help="do not run rhas_behavior (config/behavior.yaml)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[rhas_demo] %(message)s")
    from .demo_assets import build_assets

    assets = build_assets(args.out)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")
    env.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    params = {
        "checkpoint": assets["checkpoint"],
        "backbone": "clip",
        "backbone_model": assets["backbone_model"],
        "local_files_only": "true",
        "detector": "external",
        "sample_fps": assets["fps"],
        "window": assets["window"],
        "hop": assets["hop"],
        "min_window_frames": 16,
        "image_qos": "reliable",
        "smooth": 5,
        "segment_all_persons": str(args.everyone).lower(),
        "autostart": "true",
        "device": "auto",
    }
    cmd = [sys.executable, "-m", "rhas_ros.node", "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    print(f"starting rhas_node (checkpoint {assets['checkpoint']}, ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']})", flush=True)
    node = subprocess.Popen(cmd, env=env, start_new_session=True)
    behavior = None
    if not args.no_behavior:  # the consumer side: the example behaviour node and its shipped rules
        behavior_log = open(args.out / "behavior.log", "w")  # noqa: SIM115 (closed in finally)
        behavior = subprocess.Popen(
            [sys.executable, "-m", "rhas_ros.behavior", "--ros-args", "-p", "autostart:=true",
             "-p", "labels_timeout:=120.0"],
            env=env, start_new_session=True, stdout=behavior_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        player = subprocess.run(
            [
                sys.executable,
                "-m",
                "rhas_ros.tools.player",
                "--clip",
                assets["demo_clip"],
                "--pictures",
                str(args.out / "report"),
                *([] if args.person is None else ["--person", str(args.person)]),
            ],
            env=env,
            timeout=600,
        )
        return player.returncode
    finally:
        for proc in filter(None, (behavior, node)):
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if behavior is not None:
            behavior_log.close()
            log_lines = (args.out / "behavior.log").read_text().splitlines()
            fired = [line.split("]: ", 1)[-1] for line in log_lines if "fired:" in line or "configure failed" in line]
            print(f"\nrhas_behavior (config/behavior.yaml) fired {len(fired)} time(s):")
            for line in fired:
                print(f"  {line}")


if __name__ == "__main__":
    sys.exit(main())
