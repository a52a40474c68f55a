"""hopadiff-train / hopadiff-eval end to end: learning, exact resume, DDP, NaN stop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from train_util import tiny_experiment

from hopadiff.checkpoint import read_checkpoint
from hopadiff.data import load_manifest
from hopadiff.evaluate import main as eval_main
from hopadiff.synth.features import write_feature_dataset
from hopadiff.train import main as train_main

C, D = 8, 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_feature_dataset(root, num_classes=C, samples=(40, 8, 8), length=(120, 300), persons=3, dim=D, noise=0.3)
    return root / "manifest"


# The learning budget: LEARN_EPOCHS x 64 windows in-process (about 25 s on the 2-core CI machine);
# HOPADIFF_LONG_LEARNING=1 runs the longer opt-in version (150 epochs, about 2 min).
LEARN_EPOCHS = 150 if os.environ.get("HOPADIFF_LONG_LEARNING") else 40


def test_learns_synthetic_data(dataset, tmp_path, capsys):
    """Training reaches held-out top-1 accuracy >= 60 % and >= 3x chance, and the published
    (fused diffusion) output is as accurate as the model's own encoder head (within 2 points)."""
    out = tmp_path / "run"
    cfg = tiny_experiment(
        tmp_path / "c.yaml", dataset, out, D, C, epochs=LEARN_EPOCHS, windows_per_epoch=64, eval_every=LEARN_EPOCHS // 2
    )
    assert train_main(["--config", str(cfg)]) == 0, capsys.readouterr().err[-3000:]
    assert (out / "best.pt").exists() and (out / "last.pt").exists() and list((out / "tb").iterdir())
    argv = ["--checkpoint", str(out / "best.pt"), "--split", "test", "--data-root", str(dataset)]
    assert eval_main([*argv, "--plots", "2", "--compat", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "official-compat (INFLATED" in printed and "| encoder |" in printed
    scores = json.loads((out / "eval_test" / "metrics.json").read_text())
    samples, _ = load_manifest(dataset / "test.json")
    # Chance of a random top-1 class being in the frame's label set.
    chance = 100 * np.mean(np.concatenate([s.labels[s.labels.any(1)].sum(1) / C for s in samples]))
    with capsys.disabled():
        print(f"\nheld-out top-1 {scores['acc']:.1f} % (chance {chance:.1f} %), encoder {scores['acc_encoder']:.1f} %")
    assert scores["acc"] >= 60 and scores["acc"] >= 3 * chance
    assert scores["acc"] >= scores["acc_encoder"] - 2, "the diffusion output must not fall below its encoder head"
    assert (out / "eval_test" / "per_class.csv").read_text().startswith("class_id,label")
    assert len(list((out / "eval_test").glob("timeline_*.png"))) == 2
    # Whole-sequence evaluation (the paper's protocol) runs on the same checkpoint.
    assert eval_main([*argv, "--window", "0", "--plots", "0", "--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert whole["acc"] >= 3 * chance


def _weights(path):
    return read_checkpoint(path)["model"]


def test_resume_is_exact(dataset, tmp_path, capsys):
    straight = tiny_experiment(tmp_path / "a.yaml", dataset, tmp_path / "a", D, C, epochs=2)
    assert train_main(["--config", str(straight)]) == 0
    first = tiny_experiment(tmp_path / "b.yaml", dataset, tmp_path / "b", D, C, epochs=1)
    assert train_main(["--config", str(first)]) == 0
    assert train_main(["--config", str(first), "train.epochs=2", "--resume"]) == 0, capsys.readouterr().err[-3000:]
    a, b = _weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    assert read_checkpoint(tmp_path / "b" / "last.pt")["extra"]["epoch"] == 2


def test_nan_loss_stops_and_keeps_last_checkpoint(dataset, tmp_path, capsys):
    cfg = str(tiny_experiment(tmp_path / "c.yaml", dataset, tmp_path / "r", D, C, epochs=1))
    assert train_main(["--config", cfg]) == 0
    before = (tmp_path / "r" / "last.pt").read_bytes()
    capsys.readouterr()
    assert train_main(["--config", cfg, "train.epochs=3", "model.loss.boundary_weight=nan", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "loss is nan at epoch 2" in err and "last.pt) is untouched" in err
    assert (tmp_path / "r" / "last.pt").read_bytes() == before


def test_bad_config_and_missing_data_are_reported(dataset, tmp_path, capsys):
    cfg = str(tiny_experiment(tmp_path / "c.yaml", dataset, tmp_path / "r", D + 1, C))
    for overrides, message in [
        ([], f"features are {D}-dim, model.feature_dim is {D + 1}"),
        (["data.root=/nonexistent"], "/nonexistent/train.json"),
        (["train.lrr=1"], "train.lrr"),
    ]:
        assert train_main(["--config", cfg, *overrides]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_ddp_two_cpu_processes(dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    (data / "val.json").unlink()  # no validation: exactly one checkpoint (last.pt) is written
    cfg = tiny_experiment(tmp_path / "c.yaml", data, tmp_path / "ddp", D, C, epochs=1)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    res = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "hopadiff.train", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "ddp").glob("*.pt")) == ["last.pt"]
    extra = read_checkpoint(tmp_path / "ddp" / "last.pt")["extra"]
    assert extra["world_size"] == 2 and extra["epoch"] == 1
    # 32 windows per epoch, batch 8 per process, 2 processes -> 2 optimizer steps
    assert extra["step"] == 2
