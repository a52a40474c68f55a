"""hopadiff-convert: one-time conversion of the authors' RHAS133 release to our manifests.

The release stores labels and referring texts in Python pickles, and unpickling can run
code. Run this once, on a release you downloaded yourself, with --trust-pickles; training
and evaluation then read only the JSON manifests and .npy files it writes (no pickles).

  hopadiff-convert --root RHAS133/ --out RHAS133_manifest/ --trust-pickles [--protocol random] [--backbone clip]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .config import read_label_names
from .data import DataError, load_release, write_manifest
from .features.extract import atomic_save_npy

RESOURCES = Path(__file__).resolve().parent / "resources"


def class_names_for(root: Path, labels_file: Path | None = None) -> list[str]:
    """The release's class names: ``labels_file``, else ``{root}/classes.txt`` (hopadiff-synth
    writes one), else RHAS133's 137 names."""
    for candidate in (labels_file, Path(root) / "classes.txt", RESOURCES / "rhas133_classes.txt"):
        if candidate is not None and Path(candidate).is_file():
            return read_label_names(candidate)
    raise DataError(f"labels file {labels_file} does not exist")


def convert(
    root: Path,
    out: Path,
    protocol: str,
    backbone: str,
    trust_pickles: bool,
    splits=("train", "val", "test"),
    labels_file: Path | None = None,
):
    if labels_file is not None and not Path(labels_file).is_file():
        raise DataError(f"labels file {labels_file} does not exist")
    names = class_names_for(root, labels_file)
    counts = {}
    for split in tqdm(splits, desc="splits", unit="split", dynamic_ncols=True):
        samples = load_release(root, split, protocol, backbone, len(names), trust_pickles)
        sdir = out / split
        sdir.mkdir(parents=True, exist_ok=True)
        entries = []
        for s in samples:
            for kind, arr in (
                ("holistic", s.holistic),
                ("partial", s.partial),
                ("visible", s.visible),
                ("labels", s.labels.astype(np.uint8)),
            ):
                atomic_save_npy(sdir / f"{s.name}_{kind}.npy", np.ascontiguousarray(arr))
            entries.append(
                {
                    "name": f"{split}_{s.name}",
                    "text": s.text,
                    **{k: f"{split}/{s.name}_{k}.npy" for k in ("holistic", "partial", "visible", "labels")},
                }
            )
        write_manifest(out / f"{split}.json", entries, names, True, backbone=backbone)
        counts[split] = len(entries)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hopadiff-convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", type=Path, required=True, help="folder of the authors' release")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--protocol", default="cross_movie", choices=["cross_movie", "random"])
    ap.add_argument("--backbone", default="blip2", choices=["blip2", "clip"])
    ap.add_argument("--trust-pickles", action="store_true", help="allow reading the release's pickles (can run code)")
    ap.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="class names, one per line (default: ROOT/classes.txt, else RHAS133's)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        counts = convert(args.root, args.out, args.protocol, args.backbone, args.trust_pickles, labels_file=args.labels)
    except DataError as e:
        print(f"hopadiff-convert: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote manifests to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
