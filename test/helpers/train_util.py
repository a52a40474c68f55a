"""Helpers for the training / CLI tests: the shipped small experiment config and CLI runners."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

from hopadiff.config import load_config, save_config

SMALL = Path(__file__).resolve().parents[2] / "config" / "hopadiff" / "small.yaml"
C, D = 8, 32  # classes and feature width of the training tests' synthetic features


def make_dataset(tmp_path_factory) -> Path:
    """The synthetic features the training tests and the learning test train on -> their manifest folder."""
    from hopadiff.synth.features import write_feature_dataset

    root = tmp_path_factory.mktemp("data")
    write_feature_dataset(root, num_classes=C, samples=(40, 8, 8), length=(120, 300), persons=3, dim=D, noise=0.3)
    return root / "manifest"


def tiny_experiment(path: Path, data_root: Path, out_dir: Path, feature_dim: int, num_classes: int, **train) -> Path:
    """config/hopadiff/small.yaml for this data, 2 short epochs unless overridden; written to ``path``."""
    overrides = [
        f"model.feature_dim={feature_dim}",
        f"model.num_classes={num_classes}",
        f"data.root={data_root}",
        f"train.out_dir={out_dir}",
        "train.epochs=2",
        "train.windows_per_epoch=32",
        "train.eval_every=1000",
    ]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    save_config(load_config(SMALL, overrides), path)
    return path


def run_cli(module: str, *args, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def run_main(main, *args) -> subprocess.CompletedProcess:
    """Run a CLI's ``main(argv)`` in this process, capturing its stdout/stderr like run_cli."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
