"""Choose the shipped defaults by evidence (not a test): prints a Markdown table.

  .venv/bin/python scripts/bench_ablations.py [--epochs 120] [--only NAME ...] [--json out.json]

A held-out synthetic benchmark harder than the tests' data (16 classes, 4 persons per clip,
co-occurring actions half the time, noisier features, its own seed) is written once; every
variant below is trained on it with the same budget (config/hopadiff/small.yaml's
architecture, same epochs, same seed) and scored on its test split with hopadiff-eval's
metrics and diagnostics: fused top-1 accuracy, mAP, per-class Edit and F1@{10,25,50}, the
encoder head's accuracy (the baseline the diffusion output must not fall below), each
diffusion branch alone, and the training time.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from hopadiff.config import load_config
from hopadiff.data import load_split
from hopadiff.evaluate import evaluate_samples
from hopadiff.synth.features import write_feature_dataset
from hopadiff.train import Trainer

SMALL = Path(__file__).resolve().parents[1] / "config" / "hopadiff" / "small.yaml"
C, D = 16, 32

PAPER = [
    "model.decoder.condition_injection=qk",
    "model.fusion=mean",
    "model.diffusion.condition_probs=[0.25,0.25,0.25,0.25]",
]
# name -> overrides on top of small.yaml (which carries the shipped defaults)
VARIANTS = {
    "paper (qk, mean, uniform conditions)": PAPER,
    "qk+residual": ["model.decoder.condition_injection=qk+residual", *PAPER[1:]],
    "qk+residual, fusion partial": [
        "model.decoder.condition_injection=qk+residual",
        "model.fusion=partial",
        PAPER[2],
    ],
    "qk+residual, fusion confidence": [
        "model.decoder.condition_injection=qk+residual",
        "model.fusion=confidence",
        PAPER[2],
    ],
    "qk+residual, fusion learned": ["model.decoder.condition_injection=qk+residual", "model.fusion=learned", PAPER[2]],
    "qk, fusion confidence, full condition 70 %": [
        "model.decoder.condition_injection=qk",
        "model.fusion=confidence",
        "model.diffusion.condition_probs=[0.7,0.1,0.1,0.1]",
    ],
    "qk+residual, fusion confidence, full condition 70 %": [
        "model.decoder.condition_injection=qk+residual",
        "model.fusion=confidence",
        "model.diffusion.condition_probs=[0.7,0.1,0.1,0.1]",
    ],
    "qk+residual, fusion partial, encoder predictions in the condition": [
        "model.decoder.condition_injection=qk+residual",
        "model.fusion=partial",
        PAPER[2],
        "model.encoder.feature_layer_indices=[3,5,-2]",
    ],
    "qk+residual, fusion partial, full condition 70 %": [
        "model.decoder.condition_injection=qk+residual",
        "model.fusion=partial",
        "model.diffusion.condition_probs=[0.7,0.1,0.1,0.1]",
    ],
    "qk+residual, fusion partial, encoder predictions, full condition 70 %": [
        "model.decoder.condition_injection=qk+residual",
        "model.fusion=partial",
        "model.diffusion.condition_probs=[0.7,0.1,0.1,0.1]",
        "model.encoder.feature_layer_indices=[3,5,-2]",
    ],
    "shipped defaults": [],
    "shipped, no xLSTM": ["model.ablation.use_xlstm=false"],
    "shipped, no cross gate": ["model.ablation.use_cross_gate=false"],
    "shipped, no Fourier": ["model.ablation.use_fourier=false"],
    "shipped, partial branch only": ["model.ablation.branches=partial"],
    "shipped, holistic branch only": ["model.ablation.branches=holistic"],
}


def run(name: str, overrides: list[str], data: Path, out: Path, epochs: int) -> dict:
    base = [
        f"model.feature_dim={D}",
        f"model.num_classes={C}",
        f"data.root={data}",
        f"train.out_dir={out}",
        f"train.epochs={epochs}",
        "train.windows_per_epoch=64",
        f"train.eval_every={epochs + 1}",
        "train.seed=0",
    ]
    cfg = load_config(SMALL, base + overrides)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    trainer.fit()
    seconds = time.perf_counter() - t0
    samples, _ = load_split(data, "test")
    scores, _, _ = evaluate_samples(trainer.model, samples, cfg.data.window, cfg.data.hop, True, diagnostics=True)
    scores["train_s"] = seconds
    print(f"{name}: {json.dumps({k: round(v, 1) for k, v in scores.items()})}", file=sys.stderr, flush=True)
    return scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    ap.add_argument("--json", type=Path, help="also write the scores here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench"
        write_feature_dataset(
            data, num_classes=C, samples=(48, 10, 12), length=(150, 320), persons=4, overlap=0.5, dim=D,
            noise=0.8, seed=2026,
        )  # fmt: skip
        for name, overrides in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            results[name] = run(name, overrides, data / "manifest", Path(tmp) / "runs" / str(len(results)), args.epochs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    cpu = platform.processor() or platform.machine()
    print(
        f"\nHeld-out synthetic benchmark: {C} classes, 4 persons, 50 % co-occurring actions, noise 0.8; "
        f"small.yaml architecture, {args.epochs} epochs x 64 windows, seed 0; {cpu}, "
        f"{args.threads} threads, torch {torch.__version__}\n"
    )
    print("| variant | top-1 | mAP | Edit | F1@10 | F1@25 | F1@50 | encoder top-1 | holistic | partial | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, s in results.items():
        print(
            f"| {name} | {s['acc']:.1f} | {s['map']:.1f} | {s['edit']:.1f} | {s['f1@10']:.1f} | {s['f1@25']:.1f} | "
            f"{s['f1@50']:.1f} | {s['acc_encoder']:.1f} | {s['acc_holistic']:.1f} | {s['acc_partial']:.1f} | "
            f"{s['train_s']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
