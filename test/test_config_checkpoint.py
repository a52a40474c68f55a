"""Config files (unknown keys rejected) and checkpoints (atomic, weights_only, validated)."""

from __future__ import annotations

import os

import pytest
import torch
from tiny import tiny_model_config

import hopadiff
from hopadiff.config import Config, ConfigError, config_from_dict, load_config, read_label_names, save_config


def test_seed_defaults():
    cfg = Config()
    m = cfg.model
    assert (m.encoder.num_f_maps, m.encoder.kernel_size) == (64, 5)
    assert (m.encoder.normal_dropout, m.encoder.channel_dropout, m.encoder.temporal_dropout) == (
        0.5,
        0.5,
        0.5,
    )
    assert (m.decoder.time_emb_dim, m.decoder.num_f_maps, m.decoder.kernel_size, m.decoder.dropout) == (
        512,
        24,
        5,
        0.1,
    )
    assert (m.diffusion.num_train_timesteps, m.diffusion.sampling_steps) == (1000, 25)
    assert (cfg.train.epochs, cfg.train.lr, cfg.train.weight_decay) == (1000, 1e-4, 0.0)


def test_yaml_round_trip(tmp_path):
    cfg = load_config(
        "config/hopadiff/rhas133_blip2.yaml",
        overrides=["train.batch_size=3", "model.ablation.use_fourier=false"],
    )
    assert cfg.train.batch_size == 3 and cfg.model.ablation.use_fourier is False
    # `key=` is an empty value, not YAML null
    assert load_config("config/hopadiff/rhas133_clip.yaml", ["data.labels_file="]).data.labels_file == ""
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_labels_file_ships_137_classes_in_order():
    cfg = load_config("config/hopadiff/rhas133_clip.yaml")
    names = read_label_names(cfg.data.labels_file)
    assert len(names) == cfg.model.num_classes == 137
    assert names[:3] == ["arranging", "asking", "beckoning"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("model:\n  encodr: {}\n", "model.encodr"),
        ("model:\n  encoder:\n    num_f_map: 3\n", "model.encoder.num_f_map"),
        ("train:\n  lr: fast\n", "train.lr: expected a number"),
        ("model:\n  multi_label: 1\n", "model.multi_label: expected true/false"),
        ("train: [1, 2]\n", "train: expected a mapping"),
    ],
)
def test_bad_config_keys_are_named(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_bad_override_is_named():
    with pytest.raises(ConfigError, match="train.bogus"):
        load_config("config/hopadiff/rhas133_blip2.yaml", overrides=["train.bogus=1"])


def _config():
    return config_from_dict({"model": hopadiff.config.config_to_dict(tiny_model_config())})


def _labels(n=5):
    return [f"class_{i}" for i in range(n)]


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    cfg = _config()
    model = hopadiff.HopaDIFF(cfg.model)
    path = tmp_path / "ckpt" / "m.pt"
    hopadiff.save_checkpoint(path, model, cfg, _labels(), epoch=3, note="hello")
    loaded, cfg2, labels, extra = hopadiff.load_checkpoint(path)
    assert cfg2 == cfg and labels == _labels() and extra == {"epoch": 3, "note": "hello"}
    x = torch.randn(2, 16, 20)
    a = model.predict(x, x, generator=torch.Generator().manual_seed(0))
    b = loaded.predict(x, x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"], "temporary files left behind"


def test_checkpoint_mismatch_and_corruption_raise(tmp_path):
    cfg = _config()
    path = tmp_path / "m.pt"
    hopadiff.save_checkpoint(path, hopadiff.HopaDIFF(cfg.model), cfg, _labels())
    with pytest.raises(hopadiff.CheckpointError, match="label set differs.*index 2"):
        hopadiff.load_checkpoint(path, expected_labels=["class_0", "class_1", "jumping", "class_3", "class_4"])
    with pytest.raises(hopadiff.CheckpointError, match="16-dim features, the backbone gives 768"):
        hopadiff.load_checkpoint(path, expected_feature_dim=768)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(hopadiff.CheckpointError, match="truncated.pt is corrupt"):
        hopadiff.load_checkpoint(truncated)

    text = tmp_path / "passwd"  # any other file: once "list index out of range" from torch.load
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(hopadiff.CheckpointError, match="passwd is corrupt or not a torch file: not a torch.save"):
        hopadiff.load_checkpoint(text)

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(hopadiff.CheckpointError, match="not a HopaDIFF checkpoint"):
        hopadiff.load_checkpoint(foreign)

    with pytest.raises(hopadiff.CheckpointError, match="does not exist"):
        hopadiff.load_checkpoint(tmp_path / "missing.pt")

    with pytest.raises(ValueError, match="3 label names for 5 classes"):
        hopadiff.save_checkpoint(tmp_path / "x.pt", hopadiff.HopaDIFF(cfg.model), cfg, _labels(3))


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/hopadiff_pwned",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "hopadiff-checkpoint", "payload": _Evil()}, path)
    with pytest.raises(hopadiff.CheckpointError, match="corrupt or not a torch file"):
        hopadiff.load_checkpoint(path)
    assert not os.path.exists("/tmp/hopadiff_pwned")


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    cfg = _config()
    path = tmp_path / "m.pt"
    hopadiff.save_checkpoint(path, hopadiff.HopaDIFF(cfg.model), cfg, _labels(), epoch=1)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - any pickling error
        hopadiff.save_checkpoint(path, hopadiff.HopaDIFF(cfg.model), cfg, _labels(), bad=lambda: 0)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
