"""Benchmark the node's worker pipeline (not a test): prints a Markdown table.

  .venv/bin/python scripts/bench_node.py [--frames 320] [--threads 2] [--warm-start-steps 6]
      [--device cpu|cuda] [--precision fp32|bf16|fp16] [--backbone tiny|clip|blip2] [--persons 1 3 8]

For 1, 3 and 8 persons in view (everyone mode, external boxes), a backbone and a HopaDIFF with
the shipped architecture (config/hopadiff/rhas133_clip.yaml at the backbone's feature width;
W=256, hop=32, 25 DDIM steps; untrained, random weights): sustained
sampled frames/s, per-frame cost, latency of the frames that run inference, and the feature
buffers' memory per person. Backbones: ``tiny`` a 64 px CLIP built from a config (the demo's),
``clip`` / ``blip2`` the published CLIP ViT-B/32 / BLIP-2 ITM ViT-g configurations with random
weights (scripts/bench_backbone.py builds them; the real models' cost without a download).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import hopadiff
from hopadiff.features import load_backbone
from hopadiff.features.tiny import make_tiny_clip
from hopadiff.runtime import resolve_dtype
from hopadiff.streaming import ActivityRule, SegmentStitcher, StreamConfig, find_runs
from rhas_ros.core.pipeline import RhasPipeline
from rhas_ros.core.settings import Settings


def make_backbone(kind: str, device: str, precision: str):
    if kind == "tiny":
        with tempfile.TemporaryDirectory() as tmp:
            make_tiny_clip(Path(tmp), hidden=64, image_size=64, patch=8, projection=64)
            return load_backbone("clip", tmp, device, local_files_only=True, precision=precision)
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_backbone import build

    return build(kind, device, resolve_dtype(precision, torch.device(device)))[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=320, help="sampled frames per person count (> W fills the window)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--hop", type=int, default=32)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument(
        "--warm-start-steps",
        type=int,
        default=StreamConfig.warm_start_steps if StreamConfig.warm_start else 0,
        help="warm-started windows with this many steps (0: cold; default: the node's)",
    )
    ap.add_argument(
        "--phases", type=int, default=StreamConfig.inference_phases, help="inference_phases (1: all at once)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--backbone", default="tiny", choices=["tiny", "clip", "blip2"])
    ap.add_argument("--persons", type=int, nargs="+", default=[1, 3, 8])
    ap.add_argument(
        "--engine", default="eager", choices=["eager", "compile", "onnxruntime"],
        help="inference_engine: what runs the denoising step",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    backbone = make_backbone(args.backbone, args.device, args.precision)
    labels = hopadiff.read_label_names(Path(hopadiff.__file__).parent / "resources" / "rhas133_classes.txt")
    # The shipped CLIP configuration's architecture (fusion, condition injection, ...) at the backbone's width,
    # saved as a checkpoint and loaded the way rhas_node's configure loads it (RhasPipeline.from_checkpoint).
    cfg = hopadiff.load_config(Path(__file__).parents[1] / "config" / "hopadiff" / "rhas133_clip.yaml")
    cfg.model = dataclasses.replace(cfg.model, feature_dim=backbone.feature_dim, num_classes=len(labels))
    cfg.data.backbone, cfg.data.window, cfg.data.hop = "", args.window, args.hop
    settings = Settings(
        checkpoint=str(Path(tempfile.mkdtemp(prefix="bench_node_")) / "model.pt"),
        backbone="blip2" if args.backbone == "blip2" else "clip",
        detector="external",
        device=args.device,
        precision=args.precision,
        inference_engine=args.engine,
        window=args.window,
        hop=args.hop,
        ddim_steps=args.steps,
        segment_all_persons=True,
        max_persons=8,
        min_window_frames=16,
        warm_start=args.warm_start_steps > 0,
        warm_start_steps=max(args.warm_start_steps, 1),
        inference_phases=args.phases,
    )
    hopadiff.save_checkpoint(settings.checkpoint, hopadiff.HopaDIFF(cfg.model), cfg, labels)
    t0 = time.perf_counter()
    base = RhasPipeline.from_checkpoint(settings, print, backbone=backbone)
    if args.engine != "eager":
        print(f"# inference_engine {args.engine}: configure took {time.perf_counter() - t0:.1f} s (before the table)")
    print(
        f"# rhas_node worker benchmark: {args.device} {args.precision}, {args.threads} torch threads, "
        f"W={args.window}, hop={args.hop}, {args.steps} DDIM steps"
        + (f" (warm-started windows: {args.warm_start_steps})" if args.warm_start_steps else " (cold)")
        + (f", inference_phases {args.phases}" if args.phases > 1 else "")
        + f", engine {base.model.engine_report}"
        + f", {len(labels)} classes, backbone {args.backbone}, 640x480 frames"
    )
    print()
    print(
        "| persons | sustained frames/s | median ms/frame | inference frames: median latency ms | p95 latency ms "
        "| feature buffers MiB per person |"
    )
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n in args.persons:
        pipe = RhasPipeline(base.model, base.backbone, None, base.config)  # fresh tracks and buffers, one model
        frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        boxes = np.array([[20 + 75 * i, 100, 60, 200] for i in range(n)], dtype=np.float64)
        per_frame, latency = [], []
        t_start = time.perf_counter()
        for k in range(args.frames):
            t0 = time.perf_counter()
            result = pipe.process(frame, k * 200_000_000, (boxes + rng.normal(0, 1, boxes.shape), np.ones(n), None))
            dt = (time.perf_counter() - t0) * 1e3
            per_frame.append(dt)
            if result.inference_ms is not None:
                latency.append(dt)
        total = time.perf_counter() - t_start
        lat = sorted(latency)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
        # float32 features: the shared holistic ring plus each person's ring, W frames each
        mib = pipe.memory_frames() * backbone.feature_dim * 4 / 2**20 / n
        print(
            f"| {n} | {args.frames / total:.1f} | {statistics.median(per_frame):.1f} | "
            f"{statistics.median(lat) if lat else float('nan'):.0f} | {p95:.0f} | {mib:.2f} |"
        )
    stitcher_benchmark(args.window, args.hop, len(labels))


def _runs_by_loop(active: np.ndarray) -> list:
    """The stitcher's former run finding (a Python loop over classes x frames), for comparison."""
    runs = []
    for c in range(active.shape[0]):
        i = 0
        while i < active.shape[1]:
            if active[c, i]:
                j = i
                while j + 1 < active.shape[1] and active[c, j + 1]:
                    j += 1
                runs.append((c, i, j))
                i = j + 1
            else:
                i += 1
    return runs


def stitcher_benchmark(window: int, hop: int, num_classes: int, windows: int = 40) -> None:
    """Micro-benchmark: one person's stitching per window (multi-label, smoothing 5)."""
    rng = np.random.default_rng(0)
    st = SegmentStitcher(num_classes, ActivityRule(smooth=5))
    per_window = []
    for w in range(windows):
        ks = list(range(w * hop, w * hop + window))
        probs = rng.random((num_classes, window)) ** 4  # a few classes active at a time
        t0 = time.perf_counter()
        st.add_window(ks, [k * 200_000_000 for k in ks], probs)
        per_window.append((time.perf_counter() - t0) * 1e3)
    active = rng.random((num_classes, window)) ** 4 >= 0.5
    t0 = time.perf_counter()
    for _ in range(10):
        find_runs(active)
    vec = (time.perf_counter() - t0) * 100
    t0 = time.perf_counter()
    for _ in range(10):
        _runs_by_loop(active)
    loop = (time.perf_counter() - t0) * 100
    print()
    print(f"# stitching one person-window: {num_classes} classes, W={window}, hop {hop}, smoothing 5")
    print()
    print("| step | ms |\n|---|---|")
    print(f"| SegmentStitcher.add_window (median of {windows}) | {statistics.median(per_window):.2f} |")
    print(f"| run finding, numpy (find_runs) | {vec:.3f} |")
    print(f"| run finding, the former Python loop | {loop:.3f} |")


if __name__ == "__main__":
    main()
