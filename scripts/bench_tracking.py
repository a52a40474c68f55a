"""How long track identities last on real footage (not a test): prints a Markdown table.

  .venv/bin/python scripts/bench_tracking.py VIDEO [--detector hog] [--frames 400] [--fps 0]

Runs the node's detector and tracker (rhas_ros.core: the same classes rhas_node uses) over any
video, sampled at --fps (0: every frame), and reports what HopaDIFF's windows depend on: tracks
per frame, distinct ids, track duration (mean / median / longest, seconds), the share of frames
the five longest tracks were matched, and the per-frame cost of detector and tracker. Real
multi-person footage: Debian's opencv-doc ships examples/data/vtest.avi (768x576, 10 fps, a hall
with 4-8 people): `apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb x`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from rhas_ros.core.detectors import make_detector
from rhas_ros.core.tracker import IouTracker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", type=Path)
    ap.add_argument("--detector", default="hog", choices=["hog", "full_frame"])
    ap.add_argument("--frames", type=int, default=400, help="sampled frames at most")
    ap.add_argument("--fps", type=float, default=0.0, help="sampling rate (0: every frame)")
    args = ap.parse_args()
    cap = cv2.VideoCapture(str(args.video))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {args.video}")
    video_fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    step = max(1, round(video_fps / args.fps)) if args.fps > 0 else 1
    fps = video_fps / step
    detector = make_detector(args.detector, "", "cpu", True)
    tracker = IouTracker()
    seen: dict[int, list[int]] = {}  # id -> sampled frames where matched
    per_frame, det_ms, trk_ms = [], [], []
    i = k = 0
    while k < args.frames:
        ok, bgr = cap.read()
        if not ok:
            break
        i += 1
        if (i - 1) % step:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        boxes, scores = detector.detect(rgb)
        t1 = time.perf_counter()
        tracks = tracker.update(boxes, scores)
        t2 = time.perf_counter()
        det_ms.append((t1 - t0) * 1e3)
        trk_ms.append((t2 - t1) * 1e3)
        live = [t for t in tracks if t.missed == 0]
        per_frame.append(len(live))
        for t in live:
            seen.setdefault(t.track_id, []).append(k)
        k += 1
    durations = sorted(((v[-1] - v[0] + 1) / fps for v in seen.values()), reverse=True)
    longest = sorted(seen.values(), key=lambda v: v[-1] - v[0], reverse=True)[:5]
    matched = [100.0 * len(v) / (v[-1] - v[0] + 1) for v in longest]
    print(f"# tracking on {args.video.name}: {k} sampled frames at {fps:g} fps, detector {args.detector}, IouTracker")
    print()
    print("| measure | value |\n|---|---|")
    print(f"| persons tracked per frame (mean) | {np.mean(per_frame):.1f} |")
    print(f"| distinct track ids | {len(seen)} |")
    print(f"| track duration, s: mean / median / longest | {np.mean(durations):.1f} / "
          f"{statistics.median(durations):.1f} / {durations[0]:.1f} |")  # fmt: skip
    print(f"| five longest tracks: share of their span matched, % | {', '.join(f'{m:.0f}' for m in matched)} |")
    print(f"| detector ms per frame (median) | {statistics.median(det_ms):.1f} |")
    print(f"| tracker ms per frame (median) | {statistics.median(trk_ms):.2f} |")


if __name__ == "__main__":
    main()
