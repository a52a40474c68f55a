"""hopadiff-train end to end: exact resume, DDP, NaN stop, errors (learning: test_learning.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from train_util import C, D, make_dataset, tiny_experiment

from hopadiff.checkpoint import read_checkpoint
from hopadiff.train import main as train_main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory)


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
        (["model.num_classes=..."], "override 'model.num_classes=...': the value is not valid YAML"),
        (["--resume", "data.root=/nonexistent"], "/nonexistent/train.json"),  # --resume takes no path
    ]:
        assert train_main(["--config", cfg, *overrides]) == 2
        assert message in capsys.readouterr().err


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
