"""Assets for the README's demo, built offline once and cached (no downloads, CPU only):

1. synthetic multi-person clips (hopadiff.synth.video) for training, validation and the demo;
2. a small CLIP built from a config and fine-tuned contrastively for a minute on the training
   clips' person crops paired with texts like "the tall person in the red shirt is waving",
   so its embeddings know shirt colours, sizes and poses (real BLIP-2/CLIP weights cannot be
   downloaded here; README: how to use them);
3. features of the training clips extracted with that backbone (hopadiff.features.extract);
4. a HopaDIFF checkpoint trained on them (hopadiff.train) for about a minute.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

VERSION = 3
log = logging.getLogger("rhas_demo")


def small_config_path() -> Path:
    """config/hopadiff/small.yaml from the source tree, or from the installed share folder."""
    here = Path(__file__).resolve().parents[2] / "config" / "hopadiff" / "small.yaml"  # the repository root
    if here.exists():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("rhas_ros")) / "config" / "hopadiff" / "small.yaml"


def build_assets(out: Path, train_seconds_hint: str = "about a minute") -> dict:
    """Build (or reuse) everything the demo needs under ``out``; returns the summary dict."""
    from hopadiff.config import load_config
    from hopadiff.features import load_backbone
    from hopadiff.features.extract import extract
    from hopadiff.features.finetune import finetune_clip
    from hopadiff.features.tiny import make_tiny_clip
    from hopadiff.synth.video import write_video_dataset
    from hopadiff.train import Trainer

    out = Path(out)
    summary_path = out / "assets.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("version") == VERSION and Path(summary["checkpoint"]).exists():
            log.info("reusing demo assets in %s (delete the folder to rebuild)", out)
            return summary
    t0 = time.time()
    log.info("building demo assets in %s (first run only, %s of training)", out, train_seconds_hint)
    train = write_video_dataset(out / "clips_train", clips=12, frames=160, persons=3, fps=10, seed=100)
    val = write_video_dataset(out / "clips_val", clips=2, frames=160, persons=3, fps=10, seed=200)
    demo = write_video_dataset(out / "clips_demo", clips=1, frames=200, persons=3, fps=10, seed=300)
    model_dir = out / "clip_model"
    make_tiny_clip(model_dir, hidden=64, image_size=64, patch=8, projection=64, layers=2)
    finetune_clip(model_dir, Path(train["manifest"]))
    backbone = load_backbone("clip", str(model_dir), "cpu", "fp32", local_files_only=True)
    extract(Path(train["manifest"]), out / "features", backbone, "train")
    extract(Path(val["manifest"]), out / "features", backbone, "val")
    cfg = load_config(
        small_config_path(),
        [
            f"model.feature_dim={backbone.feature_dim}",
            f"model.num_classes={len(train['classes'])}",
            f"data.root={out / 'features'}",
            "data.hop=16",
            "data.sample_fps=10.0",
            "train.epochs=200",
            "train.windows_per_epoch=32",
            "train.eval_every=40",
            f"train.out_dir={out / 'run'}",
        ],
    )
    Trainer(cfg).fit()
    summary = {
        "version": VERSION,
        "checkpoint": str(out / "run" / "best.pt"),
        "backbone_model": str(model_dir),
        "feature_dim": backbone.feature_dim,
        "classes": train["classes"],
        "demo_clip": demo["manifest"],
        "window": cfg.data.window,
        "hop": cfg.data.hop,
        "fps": 10.0,
        "build_seconds": round(time.time() - t0),
    }
    summary_path.write_text(json.dumps(summary, indent=1))
    return summary
