"""How long track identities last (not a test): prints Markdown tables.

  .venv/bin/python scripts/bench_tracking.py VIDEO [--frames 400] [--fps 0] [--upscale 1.3]
  .venv/bin/python scripts/bench_tracking.py --synthetic 12 [--frames 300] [--across 0.95 0.8 0.7]

Real footage: runs the node's detector and tracker (rhas_ros.core: the classes rhas_node uses)
over any video, sampled at --fps (0: every frame), and reports what HopaDIFF's windows depend
on: persons tracked per frame, distinct ids (and per minute), track duration (mean / median /
longest, s), the share of its span each of the five longest tracks was matched, target changes in
referring mode (the grounding hysteresis over the tracks, with each track's similarity a fixed
draw per id: what changes the target is then only the tracks coming and going), detector and
tracker cost per frame. Detections are cached next to --cache so parameter sweeps skip HOG.
Debian's opencv-doc ships examples/data/vtest.avi (768x576, 10 fps, a hall with 4-8 people):
`apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb x`.

--synthetic N renders N hopadiff-synth --video clips (3 persons crossing each other; walking and
running only, so a box never jumps by a pose change), simulates a detector from their ground
truth (jitter, 10% misses, no box for the person behind while two overlap, a false box now and
then) and reports ID switches and fragmentations (rhas_ros.tools.tracking_eval): motion only;
with the node's default appearance descriptor, the colour histogram, computed from the rendered
pixels, at each gate in --color-gates (the node's default gate is among them); and with simulated
crop embeddings of each quality in --across (the cosine between two persons' embeddings; a crop's
cosine with its own person's is about 0.95), the gate off and at --gate: what a backbone's crop
features would give. Simulated, because without model weights there is no learnt embedding worth
the name here: the tiny random CLIP's crop features are 0.95 similar within and across persons
(what --across 0.95 stands for).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from hopadiff.frames import read_frames
from rhas_ros.core.appearance import color_descriptors
from rhas_ros.core.detectors import HogDetector
from rhas_ros.core.grounding import Grounder, GroundingConfig
from rhas_ros.core.settings import Settings, part, tracker_params
from rhas_ros.core.tracking import Detections, PersonTracker


def sampled_frames(video: Path, frames: int, step: int):
    """Every ``step``-th frame of the video as RGB, at most ``frames`` of them (one at a time)."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {video}")
    n, i = 0, 0
    while n < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % step == 0:
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        i += 1
    cap.release()


def detections(video: Path, frames: int, step: int, upscale: float, cache: Path | None):
    key = cache / f"{video.stem}_{frames}_{step}_{upscale:g}.npz" if cache else None
    if key and key.exists():
        z = np.load(key)
        return [z[f"arr_{i}"] for i in range(len(z.files) - 1)], z["ms"]
    det = HogDetector(upscale=upscale)
    out, ms = [], []
    for rgb in sampled_frames(video, frames, step):
        t0 = time.perf_counter()
        boxes, scores = det.detect(rgb)
        ms.append((time.perf_counter() - t0) * 1e3)
        out.append(np.c_[boxes, scores] if len(boxes) else np.zeros((0, 5)))
    if key:
        key.parent.mkdir(parents=True, exist_ok=True)
        np.savez(key, *out, ms=np.array(ms))
    return out, np.array(ms)


def real_video(args) -> None:
    cap = cv2.VideoCapture(str(args.video))
    video_fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    cap.release()
    step = max(1, round(video_fps / args.fps)) if args.fps > 0 else 1
    fps = video_fps / step
    dets, det_ms = detections(args.video, args.frames, step, args.upscale, args.cache)
    settings = Settings(reid_appearance_gate=args.gate) if args.gate is not None else Settings()
    tracker = PersonTracker(tracker_params(settings))
    # The colour descriptors need the pixels: the video is read once more (the detections may be cached).
    colour = settings.reid_appearance == "color"
    frames = sampled_frames(args.video, len(dets), step) if colour else itertools.repeat(None)
    grounder = Grounder(part(GroundingConfig, settings))
    rng = np.random.default_rng(0)
    sim: dict[int, float] = {}
    seen: dict[int, list[int]] = {}
    per_frame, trk_ms, targets = [], [], []
    for k, (d, rgb) in enumerate(zip(dets, frames, strict=False)):
        t0 = time.perf_counter()
        embs = color_descriptors(rgb, d[:, :4]) if colour else None
        tracks = tracker.update(Detections.of(d[:, :4], d[:, 4], embeddings=embs), round(k * 1e9 / fps))
        trk_ms.append((time.perf_counter() - t0) * 1e3)
        live = [t for t in tracks if t.seen]
        per_frame.append(len(live))
        for t in live:
            seen.setdefault(t.track_id, []).append(k)
            sim.setdefault(t.track_id, float(rng.uniform(-0.2, 0.4)))
        targets.append(grounder.update({t.track_id: sim[t.track_id] for t in live}, [t.track_id for t in tracks]))
    n = len(dets)
    durations = sorted(((v[-1] - v[0] + 1) / fps for v in seen.values()), reverse=True) or [0.0]
    longest = sorted(seen.values(), key=lambda v: v[-1] - v[0], reverse=True)[:5]
    matched = [100.0 * len(v) / (v[-1] - v[0] + 1) for v in longest]
    changes = sum(1 for a, b in itertools.pairwise(targets) if a is not None and b != a)
    minutes = n / fps / 60
    print(
        f"# tracking on {args.video.name}: {n} sampled frames ({n / fps:.0f} s) at {fps:g} fps, hog x{args.upscale:g}, "
        f"appearance: {settings.reid_appearance} (gate {settings.reid_appearance_gate:g})"
    )
    print()
    print("| measure | value |\n|---|---|")
    print(f"| persons tracked per frame (mean) | {np.mean(per_frame):.1f} |")
    print(f"| distinct track ids (per minute) | {len(seen)} ({len(seen) / minutes:.0f}) |")
    print(f"| track duration, s: mean / median / longest | {np.mean(durations):.1f} / "
          f"{statistics.median(durations):.1f} / {durations[0]:.1f} |")  # fmt: skip
    print(f"| five longest tracks: share of their span matched, % | {', '.join(f'{m:.0f}' for m in matched)} |")
    print(f"| referring mode: target changes | {changes} |")
    print(f"| detector ms per frame (median) | {statistics.median(det_ms):.1f} |")
    print(f"| tracker ms per frame, with the colour descriptors (median / max) | {statistics.median(trk_ms):.2f} / "
          f"{max(trk_ms):.2f} |")  # fmt: skip


def synthetic(args) -> None:
    from hopadiff.synth.video import write_video_dataset
    from rhas_ros.tools.tracking_eval import (
        ColorAppearance,
        SimulatedAppearance,
        clip_truth,
        crossings,
        simulated_detections,
        track_clip,
    )

    with tempfile.TemporaryDirectory() as tmp:
        doc = write_video_dataset(Path(tmp), clips=args.synthetic, frames=args.frames, persons=3,
                                  actions=("walking", "running"), seed=args.seed)  # fmt: skip
        manifest = Path(doc["manifest"])
        clips = []
        for v in json.loads(manifest.read_text())["videos"]:
            truth = clip_truth(v)
            frames = read_frames(manifest.parent / v["video"])
            clips.append((v, truth, simulated_detections(truth, np.random.default_rng(0)), frames))

    def track(across, gate):
        per_clip = []
        for v, truth, dets, frames in clips:
            if across == "color":
                look = ColorAppearance(frames)
            else:
                look = None if across is None else SimulatedAppearance(truth, across=across, seed=1)
            tracker = PersonTracker(tracker_params(Settings(reid_appearance_gate=gate)))
            per_clip.append(track_clip(tracker, truth, dets, v["fps"], look))
        return per_clip

    n_cross = [crossings(truth) for _, truth, _, _ in clips]
    print(
        f"# synthetic crossings: {len(clips)} clips x {args.frames} frames (seed {args.seed}), 3 persons, "
        f"{sum(n_cross)} crossings"
    )
    print()
    print("| appearance (simulated: cosine between two persons) | reid_appearance_gate | ID switches | "
          "fragmentations | coverage % | persons with more than one id |\n|---|---|---|---|---|---|")  # fmt: skip
    motion = None
    rows = [(None, -1.0)]
    rows += [("color", g) for g in args.color_gates]
    rows += [(a, g) for a in args.across for g in (-1.0, 0.75 if args.gate is None else args.gate)]
    for across, gate in rows:
        res = track(across, gate)
        motion = motion or res
        several = sum(len(ids) > 1 for e in res for ids in e["ids"].values())
        coverage = np.mean([e["coverage"] for e in res])
        name = {None: "none (motion only)", "color": "colour descriptor (rendered pixels)"}.get(across)
        name = name or f"simulated, {across:g}"
        switches, fragments = sum(e["id_switches"] for e in res), sum(e["fragmentations"] for e in res)
        print(f"| {name} | {'-' if across is None else f'{gate:g}'} | {switches} | {fragments} | "
              f"{100 * coverage:.1f} | {several} of {3 * len(res)} |")  # fmt: skip
    print()
    print("Motion only, per clip:")
    print()
    print("| clip | crossings | ID switches | fragmentations | ids per person |\n|---|---|---|---|---|")
    for (v, *_), c, e in zip(clips, n_cross, motion, strict=True):
        ids = " ".join(f"{g}:{len(i)}" for g, i in sorted(e["ids"].items()))
        print(f"| {v['name']} | {c} | {e['id_switches']} | {e['fragmentations']} | {ids} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", type=Path, nargs="?")
    ap.add_argument("--frames", type=int, default=400, help="sampled frames at most (per clip with --synthetic)")
    ap.add_argument("--fps", type=float, default=0.0, help="sampling rate (0: every frame)")
    ap.add_argument("--upscale", type=float, default=Settings.hog_upscale, help="the hog detector's upscale")
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep detections in between runs")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N", help="N synthetic clips with ground truth")
    ap.add_argument("--seed", type=int, default=0, help="--synthetic: which clips (the renderer's seed)")
    ap.add_argument("--across", type=float, nargs="*", default=[0.95, 0.9, 0.8, 0.7, 0.6],
                    help="--synthetic: simulated appearance qualities (cosine between two persons' crops)")  # fmt: skip
    ap.add_argument(
        "--gate", type=float, default=None,
        help="VIDEO: reid_appearance_gate (default: the node's); --synthetic: the gate tried with the simulated "
        "embeddings besides the default (0.75 when not given)",
    )  # fmt: skip
    ap.add_argument("--color-gates", type=float, nargs="*", default=[-1.0, 0.2, 0.3, 0.5, 0.7],
                    help="--synthetic: reid_appearance_gate values tried with the colour descriptor")  # fmt: skip
    args = ap.parse_args()
    if args.synthetic:
        synthetic(args)
    elif args.video:
        real_video(args)
    else:
        ap.error("give a VIDEO or --synthetic N")


if __name__ == "__main__":
    main()
