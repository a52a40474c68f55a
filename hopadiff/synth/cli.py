"""hopadiff-synth: synthetic datasets for tests and demos.

Feature mode (default) writes features in both layouts (``features.py``); ``--video`` renders
multi-person clips with boxes, labels and an extract manifest instead (``video.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .features import write_feature_dataset
from .video import write_video_dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hopadiff-synth", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path, help="output folder")
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--samples", type=int, nargs=3, default=[24, 6, 6], metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--length", type=int, nargs=2, default=[120, 300], metavar=("MIN", "MAX"))
    ap.add_argument("--persons", type=int, default=3)
    ap.add_argument("--overlap", type=float, default=0.3, help="probability of a second, co-occurring action")
    ap.add_argument("--dim", type=int, default=64, help="feature dimension D")
    ap.add_argument("--fps", type=float, default=5.0)
    ap.add_argument(
        "--noise", type=float, default=0.5, help="per-frame feature noise (class prototypes have unit scale)"
    )
    ap.add_argument(
        "--holistic-focus", type=float, default=0.0, metavar="F",
        help="the holistic feature weights the referred person by 1/P + F(1 - 1/P) in the scene mix, as a "
        "text-conditioned holistic feature would (0: the plain mean of the P persons; 1: the target alone)",
    )  # fmt: skip
    ap.add_argument(
        "--crop-failure", type=float, default=0.0, metavar="R",
        help="about a fraction R of each sample's frames has a failed target crop, in spans of 5-25 frames: "
        "half occluded (zero, not visible), half another person's features (visible: a silent swap)",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--video", action="store_true", help="render multi-person clips + an extract manifest instead")
    ap.add_argument(
        "--clips",
        type=int,
        nargs="+",
        default=[2],
        metavar="N",
        help="--video: number of clips; three numbers (TRAIN VAL TEST) write OUT/{train,val,test}/extract.json",
    )
    ap.add_argument("--frames", type=int, default=120, help="--video: frames per clip")
    ap.add_argument("--size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"), help="--video: frame size")
    args = ap.parse_args(argv)
    if args.classes < 1 or args.persons < 1 or min(args.length) < 2 or args.length[0] > args.length[1]:
        ap.error("need --classes >= 1, --persons >= 1 and 2 <= MIN <= MAX for --length")
    if not 0 <= args.holistic_focus <= 1 or not 0 <= args.crop_failure < 1:
        ap.error("need 0 <= --holistic-focus <= 1 and 0 <= --crop-failure < 1")
    if args.video and len(args.clips) not in (1, 3):
        ap.error("--clips takes one number, or three (TRAIN VAL TEST)")
    if args.video:
        splits = (
            {"": args.clips[0]}
            if len(args.clips) == 1
            else dict(zip(("train", "val", "test"), args.clips, strict=True))
        )
        summary = {}
        for k, (split, n) in enumerate(splits.items()):  # each split its own clips (own seeds)
            summary[split or "clips"] = write_video_dataset(
                args.out / split,
                clips=n,
                frames=args.frames,
                persons=args.persons,
                size=tuple(args.size),
                fps=args.fps,
                seed=args.seed + 1000 * k,
            )
    else:
        summary = write_feature_dataset(
            args.out,
            args.classes,
            tuple(args.samples),
            tuple(args.length),
            args.persons,
            args.overlap,
            args.dim,
            seed=args.seed,
            fps=args.fps,
            noise=args.noise,
            holistic_focus=args.holistic_focus,
            crop_failure=args.crop_failure,
        )
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
