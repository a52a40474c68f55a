"""hopadiff-eval: score a checkpoint on a split.

Two modes, reported separately and labelled:
- offline (always): sliding windows start-aligned over each whole sequence, the last one aligned
  to the end, overlapping outputs averaged (or ``--window 0``: each sequence as one window, the
  paper's evaluation);
- streaming (``--streaming``): each sequence replayed frame by frame through
  hopadiff.streaming, the code the ROS node runs (trailing windows every hop frames, the same
  seed per window, the node's activity rule, smoothing and stitching); scored on the frames the
  node publishes, with the offline result on the same frames next to it.

Prints a metrics table (our metrics; the authors' inflated metric only with --compat, and
labelled so), writes metrics.json, per_class.csv and timeline PNGs (ground truth vs
prediction per class over time) for chosen samples; with --streaming also
streaming/{sample}.json (per-frame published classes and the published segments).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import CheckpointError, load_checkpoint
from .data import DataError, Sample, load_split
from .metrics import multilabel_scores, official_compat_scores, per_class_report, segmentation_scores
from .runtime import resolve_device
from .streaming import StreamConfig, smooth_time, stream_sequence
from .windows import StitchedProbabilities, pad_to_window, window_starts

DIAGNOSTICS = ("encoder", "holistic", "partial", "x0_at_T")


@torch.inference_mode()
def predict_sequence(
    model,
    sample: Sample,
    window: int,
    hop: int,
    steps=None,
    eta=None,
    seed: int = 0,
    batch: int = 8,
    diagnostics: bool = False,
) -> dict[str, np.ndarray]:
    """(C, T) probabilities for a whole sequence, windows stitched by averaging.

    ``window`` 0 runs the whole sequence as one window (the paper's evaluation; memory grows
    linearly with T). Returns {"fused": ...} and, with ``diagnostics``, the regression
    diagnostics of the model against its own baselines: "encoder" (the encoder heads, fused
    like the diffusion output), "holistic"/"partial" (each diffusion chain alone) and
    "x0_at_T" (the fused x0 estimate of one denoising step from pure noise).
    """
    device = next(model.parameters()).device
    T = sample.num_frames
    window = T if window == 0 else window
    C = model.cfg.num_classes
    names = ("fused", *DIAGNOSTICS) if diagnostics else ("fused",)
    stitched = {n: StitchedProbabilities(C, T) for n in names}
    starts = window_starts(T, window, hop)
    gen = torch.Generator(device).manual_seed(seed)
    for i in range(0, len(starts), batch):
        chunk = starts[i : i + batch]
        hol = np.stack([pad_to_window(np.asarray(sample.holistic[s : s + window]).T, window) for s in chunk])
        par = np.stack([pad_to_window(np.asarray(sample.partial[s : s + window]).T, window) for s in chunk])
        vis = np.stack([pad_to_window(sample.visible[s : s + window], window) for s in chunk])
        inputs = [torch.from_numpy(x).to(device) for x in (hol, par, vis)]
        branches = model.predict(
            *inputs, steps=steps, eta=eta, generator=gen, return_branches=True, all_branches=diagnostics
        )
        outs = {"fused": model.fusion(branches)}
        if diagnostics:
            outs["encoder"] = model.fusion(model.encoder_probabilities(*inputs))
            for g, name in enumerate(model.branch_names):
                outs[name] = branches[:, g]
            for name in ("holistic", "partial"):
                outs.setdefault(name, outs["fused"])  # one-branch ablations: the branch is the output
            outs["x0_at_T"] = model.predict(*inputs, steps=1, eta=0.0, generator=gen)
        for name, probs in outs.items():
            for s, p in zip(chunk, probs.float().cpu().numpy(), strict=True):
                stitched[name].add(s, p)
    return {name: st.mean() for name, st in stitched.items()}


def _scores(probs, samples, multi_label: bool, compat: bool = False, activity=None, frames=None) -> tuple[dict, list]:
    """frames: per sample, the frame indices to score (default all)."""
    frames = frames or [slice(None)] * len(samples)
    if multi_label:
        gts = [s.labels.T[:, f] for s, f in zip(samples, frames, strict=True)]
        scores = multilabel_scores(probs, gts, activity=activity)
        if compat:
            scores.update({f"compat_{k}": v for k, v in official_compat_scores(probs, gts).items()})
    else:
        gts = [s.labels[f] for s, f in zip(samples, frames, strict=True)]
        scores = segmentation_scores([p.argmax(axis=0) for p in probs], gts)
    return scores, gts


def stream_samples(model, samples: list[Sample], cfg: StreamConfig, fps: float, progress: bool = True, stats=None):
    """Each sample replayed through the node's streaming code -> list of
    (probs (C, T), activity (C, T), covered (T,), published FINAL segments)."""
    bar = tqdm(samples, desc="streaming", unit="sequence", leave=False, dynamic_ncols=True, disable=not progress)
    return [
        stream_sequence(model, np.asarray(s.holistic), np.asarray(s.partial), np.asarray(s.visible), cfg, fps, stats)
        for s in bar
    ]


def streaming_scores(model, samples, cfg: StreamConfig, fps: float, offline_probs, progress: bool = True):
    """-> (streaming scores, offline scores on the same frames, coverage %, per-sample results)."""
    stats = {}
    results = stream_samples(model, samples, cfg, fps, progress, stats)
    multi = model.cfg.multi_label
    frames = [np.flatnonzero(r[2]) for r in results]
    if not any(len(f) for f in frames):
        raise ValueError("no frame was segmented in streaming mode (sequences shorter than min_window_frames?)")
    keep = [i for i, f in enumerate(frames) if len(f)]
    sub = [samples[i] for i in keep]
    fr = [frames[i] for i in keep]
    stream, _ = _scores(
        [results[i][0][:, frames[i]] for i in keep], sub, multi,
        activity=[results[i][1][:, frames[i]] for i in keep], frames=fr,
    )  # fmt: skip
    offline, _ = _scores([offline_probs[i][:, frames[i]] for i in keep], sub, multi, frames=fr)
    coverage = 100.0 * sum(len(f) for f in frames) / sum(s.num_frames for s in samples)
    stream["flicker"] = 100.0 * stats.get("flicker_changes", 0) / max(stats.get("flicker_frames", 0), 1)
    return stream, offline, coverage, results


def evaluate_samples(
    model,
    samples: list[Sample],
    window: int,
    hop: int,
    multi_label: bool,
    steps=None,
    eta=None,
    smooth: int = 1,
    compat: bool = False,
    diagnostics: bool = False,
    progress: bool = True,
    desc: str = "evaluating",
):
    """-> (scores dict, list of (C, T) probabilities, list of ground truths).

    With ``diagnostics`` the scores also hold ``acc_encoder``, ``acc_holistic``,
    ``acc_partial`` and ``acc_x0_at_T`` (see predict_sequence)."""
    bar = tqdm(samples, desc=desc, unit="sequence", leave=False, dynamic_ncols=True, disable=not progress)
    outputs = [predict_sequence(model, s, window, hop, steps, eta, diagnostics=diagnostics) for s in bar]
    probs = [smooth_time(o["fused"], smooth) for o in outputs]
    scores, gts = _scores(probs, samples, multi_label, compat)
    if diagnostics:
        for name in DIAGNOSTICS:
            extra, _ = _scores([smooth_time(o[name], smooth) for o in outputs], samples, multi_label)
            scores[f"acc_{name}"] = extra["acc"]
    return scores, probs, gts


def timeline_png(
    path: Path,
    name: str,
    probs: np.ndarray,
    gt: np.ndarray,
    labels: list[str],
    multi_label: bool,
    max_classes: int = 12,
    fps: float = 0.0,
) -> None:
    """Rows per class: ground truth (green) above prediction (blue, darker = more probable), a time
    axis (seconds when ``fps`` is known, else frames) and the probability scale."""
    C, T = probs.shape
    gt_on = gt if multi_label else np.eye(C, dtype=bool)[gt].T
    active = np.flatnonzero(gt_on.any(axis=1) | (probs >= 0.5).any(axis=1))
    order = active[np.argsort(-gt_on[active].sum(axis=1))][:max_classes]
    scale = max(1, 1000 // max(T, 1))
    width, left, row, legend = T * scale, 150, 14, 90
    rows_h = len(order) * 2 * row
    img = np.full((30 + rows_h + 40, left + width + legend, 3), 255, np.uint8)
    font, black = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.putText(img, f"{name}: ground truth (green) vs prediction (blue)", (5, 18), font, 0.45, black, 1, cv2.LINE_AA)
    shade_of = np.array([0, 200, 255])  # subtracted from white, scaled by the probability
    for r, c in enumerate(order):
        y = 30 + r * 2 * row
        cv2.putText(img, labels[c][:20], (5, y + row), font, 0.4, black, 1, cv2.LINE_AA)
        g = np.repeat(gt_on[c].astype(np.uint8), scale)
        img[y : y + row - 2, left : left + width][:, g.astype(bool)] = (60, 170, 60)
        p = np.repeat(probs[c], scale)
        shade = (255 - p[None, :, None] * shade_of[None, None, :]).astype(np.uint8)
        img[y + row : y + 2 * row - 2, left : left + width] = np.repeat(shade, row - 2, axis=0)
    # Time axis: about 8 ticks at round values.
    axis_y = 30 + rows_h + 4
    cv2.line(img, (left, axis_y), (left + width, axis_y), black, 1)
    unit, per_frame = ("s", 1.0 / fps) if fps > 0 else ("frame", 1.0)
    span = T * per_frame
    step = float(10 ** np.floor(np.log10(max(span / 8, 1e-9))))
    step *= next(m for m in (1, 2, 5, 10) if span / (step * m) <= 8)
    for tick in np.arange(0, span + 1e-9, step):
        x = left + int(tick / per_frame * scale)
        cv2.line(img, (x, axis_y), (x, axis_y + 4), black, 1)
        cv2.putText(img, f"{tick:g}", (x - 6, axis_y + 16), font, 0.35, black, 1, cv2.LINE_AA)
    cv2.putText(img, unit, (left + width + 8, axis_y + 16), font, 0.35, black, 1, cv2.LINE_AA)
    # Probability scale.
    x0, top, bottom = left + width + 20, 30, 30 + min(rows_h, 120) - 2
    for yy in range(top, bottom + 1):
        p = 1.0 - (yy - top) / max(bottom - top, 1)
        img[yy, x0 : x0 + 12] = (255 - p * shade_of).astype(np.uint8)
    cv2.putText(img, "p=1", (x0 + 16, top + 8), font, 0.35, black, 1, cv2.LINE_AA)
    cv2.putText(img, "p=0", (x0 + 16, bottom), font, 0.35, black, 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hopadiff-eval", description=__doc__)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--split", default="test", help="manifest name under the data root ({root}/{split}.json)")
    ap.add_argument("--data-root", type=Path, help="manifest folder (default: data.root stored in the checkpoint)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: next to the checkpoint)")
    ap.add_argument(
        "--window",
        type=int,
        help="W (default: the checkpoint's data.eval_window, else data.window); 0: each whole sequence at once",
    )
    ap.add_argument("--hop", type=int, help="hop (default: the checkpoint's data.hop)")
    ap.add_argument("--steps", type=int, help="DDIM steps (default: config)")
    ap.add_argument("--eta", type=float, help="DDIM eta (default: config)")
    defaults = {f.name: f.default for f in fields(StreamConfig)}  # the node's defaults, one definition
    ap.add_argument("--smooth", type=int, default=defaults["smooth"], help="median filter length along time (1 = off)")
    ap.add_argument(
        "--streaming", action="store_true", help="also replay each sequence through the node's streaming code"
    )
    ap.add_argument("--min-window-frames", type=int, default=defaults["min_window_frames"],
                    help="streaming: a person's first window once they have this many frames")  # fmt: skip
    ap.add_argument("--threshold", type=float, default=defaults["threshold"],
                    help="streaming: probability at which a (multi-label) action counts as active")  # fmt: skip
    ap.add_argument("--at-least-one-action", action=argparse.BooleanOptionalAction,
                    default=defaults["at_least_one_action"],
                    help="streaming, multi-label: the most probable action is reported on every frame too")  # fmt: skip
    ap.add_argument("--seed", type=int, default=defaults["seed"], help="start noise seed")
    warm = defaults["warm_start_steps"] if defaults["warm_start"] else 0
    ap.add_argument("--warm-start-steps", type=int, default=warm,
                    help="streaming: warm-start each window from the previous one with this many DDIM steps "
                    "(0: cold, the full --steps)")  # fmt: skip
    ap.add_argument("--plots", type=int, default=3, help="timeline PNGs for the first N samples")
    ap.add_argument("--compat", action="store_true", help="also report the authors' INFLATED metric, labelled")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    try:
        device = resolve_device(args.device)
        model, cfg, labels, _ = load_checkpoint(args.checkpoint, map_location=device)
        root = args.data_root or Path(cfg.data.root)
        samples, meta = load_split(root, args.split)
        if meta["labels"] != labels:
            raise DataError(f"{root}/{args.split}.json has another label set than {args.checkpoint}")
    except (CheckpointError, DataError, ValueError) as e:
        print(f"hopadiff-eval: error: {e}", file=sys.stderr)
        return 2
    default_window = cfg.data.window if cfg.data.eval_window is None else cfg.data.eval_window
    window = default_window if args.window is None else args.window
    hop = args.hop or cfg.data.hop
    if window < 0:
        print(f"hopadiff-eval: error: --window {window} must be >= 0", file=sys.stderr)
        return 2
    multi = cfg.model.multi_label
    scores, probs, gts = evaluate_samples(
        model, samples, window, hop, multi, args.steps, args.eta, args.smooth, args.compat, diagnostics=True
    )
    if args.streaming:
        if window == 0:
            print("hopadiff-eval: error: --streaming needs a window (the node runs windows)", file=sys.stderr)
            return 2
        stream_cfg = StreamConfig(
            window=window, hop=hop, min_window_frames=args.min_window_frames, ddim_steps=args.steps or None,
            eta=args.eta or 0.0, seed=args.seed, threshold=args.threshold,
            at_least_one_action=args.at_least_one_action, smooth=args.smooth,
            warm_start=args.warm_start_steps > 0, warm_start_steps=max(args.warm_start_steps, 1),
        )  # fmt: skip
        stream, offline_same, coverage, results = streaming_scores(
            model, samples, stream_cfg, float(meta.get("fps", 10.0)) or 10.0, probs
        )
    out = args.out or args.checkpoint.parent / f"eval_{args.split}"
    out.mkdir(parents=True, exist_ok=True)
    shape = "whole sequences" if window == 0 else f"sliding windows W={window}, hop={hop}"
    print(f"\n{args.checkpoint} on {args.split}: {len(samples)} sequences, {shape}\n")
    print(f"{'multi-label: top-1 hit Acc, frame mAP, per-class Edit/F1' if multi else 'Acc, Edit, F1'}")
    print("(MS-TCN/ASFormer/DiffAct reference definitions, final-segment rule included)\n")
    print("| metric | value |\n|---|---|")
    for k, v in scores.items():
        if not k.startswith(("compat_", "acc_", "streaming", "offline_same")):
            print(f"| {k} | {v:.2f} |")
    print("\ndiagnostics (frame accuracy of the model's parts; the fused output should not be below the encoder):\n")
    print("| output | acc |\n|---|---|")
    print(f"| fused diffusion (published) | {scores['acc']:.2f} |")
    for k in DIAGNOSTICS:
        print(f"| {k.replace('_', ' ')} | {scores['acc_' + k]:.2f} |")
    if args.compat:
        print("\nofficial-compat (INFLATED, the authors' script; only for comparing with the paper's tables):\n")
        print("| metric | value |\n|---|---|")
        for k, v in scores.items():
            if k.startswith("compat_"):
                print(f"| {k[7:]} | {v:.2f} |")
    if args.streaming:
        print(f"\nstreaming (the node's code: trailing windows W={window}, hop={hop}, first after "
              f"{args.min_window_frames} frames, seed {args.seed}); {coverage:.1f} % of frames published, "
              "scored on those frames:\n")  # fmt: skip
        print("| metric | streaming (node) | offline, same frames |\n|---|---|---|")
        for k, v in stream.items():
            if k in offline_same:
                print(f"| {k} | {v:.2f} | {offline_same[k]:.2f} |")
        print(f"| flicker: top class changed when a later window saw a frame again, % | {stream['flicker']:.2f} | - |")
        scores.update({f"streaming_{k}": v for k, v in stream.items()})
        scores.update({f"offline_same_frames_{k}": v for k, v in offline_same.items()})
        scores["streaming_coverage"] = coverage
        sdir = out / "streaming"
        sdir.mkdir(exist_ok=True)
        for smp, (_, act, cov, segs) in zip(samples, results, strict=True):
            doc = {
                "frames": [np.flatnonzero(act[:, t]).tolist() if cov[t] else None for t in range(smp.num_frames)],
                "segments": [
                    {
                        "class_id": g.class_id,
                        "label": labels[g.class_id],
                        "start_k": g.start_k,
                        "end_k": g.end_k,
                        "start_ns": g.start_ns,
                        "end_ns": g.end_ns,
                        "confidence": g.confidence,
                        "revision": g.revision,
                        "status": g.status,
                    }
                    for g in segs
                ],
            }
            (sdir / f"{smp.name}.json").write_text(json.dumps(doc))
    (out / "metrics.json").write_text(json.dumps(scores, indent=1))
    if multi:
        rows = per_class_report(probs, gts, labels)
        with open(out / "per_class.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    for s, p, g in list(zip(samples, probs, gts, strict=True))[: args.plots]:
        timeline_png(out / f"timeline_{s.name}.png", s.name, p, g, labels, multi, fps=meta.get("fps", 0.0))
    print(
        f"\nwrote {out}/metrics.json"
        + (", per_class.csv" if multi else "")
        + f" and {min(args.plots, len(samples))} timeline PNG(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
