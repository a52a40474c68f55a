"""How long the things the test suite checks by mechanism take (the tests assert what happens, never
how fast: a test's verdict must not depend on the machine's speed or load). Prints a table.

    .venv/bin/python scripts/bench_timings.py [--repeats 5]

- a 16 MP (4096x4096) frame through the hog detector, with hog_max_side's cap (1280) and without it;
- configure refusing a checkpoint trained on another backbone (before any backbone is loaded);
- a backbone neither on disk nor in the hub cache, refused without asking the hub;
- the external boxes' lookup when none is near a frame's stamp and newer ones arrived (no wait).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test" / "helpers"))


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import torch
    from tiny import tiny_model_config

    import hopadiff
    from hopadiff.config import Config
    from hopadiff.features import load_backbone
    from rhas_ros.core.detectors import HogDetector
    from rhas_ros.core.intake import Inbox
    from rhas_ros.core.pipeline import RhasPipeline
    from rhas_ros.core.settings import Settings

    rows = []
    photo = cv2.cvtColor(cv2.imread(str(REPO / "test" / "data" / "vtest_frame100.jpg")), cv2.COLOR_BGR2RGB)
    big = cv2.copyMakeBorder(cv2.resize(photo, (4096, 3072)), 0, 1024, 0, 0, cv2.BORDER_CONSTANT, value=0)
    capped = HogDetector(upscale=1.0)
    rows.append(("16 MP frame, hog (hog_max_side 1280, upscale 1.0)", timed(lambda: capped.detect(big), args.repeats)))
    uncapped = HogDetector(upscale=1.0, max_side=0)
    rows.append(("16 MP frame, hog without the cap", timed(lambda: uncapped.detect(big), min(2, args.repeats))))

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(model=tiny_model_config(feature_dim=24, num_classes=5))
        cfg.data.backbone = "clip"
        ckpt = Path(tmp) / "clip_trained.pt"
        hopadiff.save_checkpoint(ckpt, hopadiff.HopaDIFF(cfg.model), cfg, [f"a{i}" for i in range(5)])
        wrong = Settings(checkpoint=str(ckpt), backbone="blip2", backbone_model="", local_files_only=False,
                         detector="full_frame")  # fmt: skip

        def refuse():
            try:
                RhasPipeline.from_checkpoint(wrong)
            except ValueError as e:
                assert "was trained on clip features" in str(e), e
                return
            raise AssertionError("configure accepted a checkpoint of another backbone")

        rows.append(("configure refusing a checkpoint of another backbone", timed(refuse, args.repeats)))

        def missing():
            try:
                load_backbone("clip", str(Path(tmp) / "no_such_backbone"), "cpu", local_files_only=True)
            except ValueError:
                return
            raise AssertionError("a missing backbone loaded")

        rows.append(("a backbone neither on disk nor cached, refused", timed(missing, args.repeats)))

    inbox = Inbox()
    inbox.start()
    inbox.put_persons(100 * 10**9, "newer")
    rows.append(("boxes lookup, none near and newer arrived (wait_s 5)",
                 timed(lambda: inbox.persons_for(50 * 10**9, 0.05, wait_s=5.0), args.repeats)))  # fmt: skip

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OpenCV {cv2.__version__}, "
          f"{args.repeats} repeats\n")  # fmt: skip
    print("| what | median ms | min ms | max ms |\n|---|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f} | {max(ms):.1f} |")


if __name__ == "__main__":
    main()
