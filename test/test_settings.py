"""The node's settings are declared once (rhas_ros/core/settings.py); the shipped parameter file
is generated from them and must stay equal; rhas_ros.core.resolve checks them against a checkpoint."""

from __future__ import annotations

from dataclasses import fields

import pytest
import yaml
from conftest import REPO

from hopadiff.streaming import SegmentStatus
from rhas_ros.core.resolve import TrainedWith, resolve
from rhas_ros.core.settings import DESCRIPTIONS, Settings, validate, yaml_text


def test_params_file_lists_every_parameter_with_its_default_and_description():
    assert '"config", "rhas.yaml"' in (REPO / "launch" / "rhas.launch.py").read_text()
    text = (REPO / "config" / "rhas.yaml").read_text()
    assert text == yaml_text(), "regenerate: python -m rhas_ros.core.settings > config/rhas.yaml"
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert params == {f.name: list(f.default) if isinstance(f.default, tuple) else f.default for f in fields(Settings)}
    for line in text.splitlines()[5:]:
        name, comment = line.split(":", 1)[0].strip(), line.split("#", 1)[1]
        assert DESCRIPTIONS[name] in comment


def _trained(**over):
    base = dict(path="m.pt", labels=("a", "b"), multi_label=True, feature_dim=8, window=256, hop=64, sample_fps=5.0,
                sampling_steps=25, train_timesteps=1000)  # fmt: skip
    return TrainedWith(**{**base, **over})


def test_resolution_fills_the_checkpoints_values_and_builds_each_parts_config():
    c = resolve(Settings(checkpoint="m.pt", threshold=0.7, track_lost_seconds=3.0, grounding_window=9),
                _trained())  # fmt: skip
    assert (c.stream.window, c.stream.hop, c.stream.ddim_steps, c.sample_fps) == (256, 64, 25, 5.0)
    assert c.stream.threshold == 0.7 and c.tracker.lost_seconds == 3.0 and c.grounding.window == 9
    assert c.tracker.max_tracks == Settings().max_boxes and not c.warnings
    c = resolve(Settings(checkpoint="m.pt", window=128, hop=16, sample_fps=2.0, ddim_steps=10), _trained())
    assert (c.stream.window, c.stream.hop, c.stream.ddim_steps, c.sample_fps) == (128, 16, 10, 2.0)
    assert len(c.warnings) == 3
    assert "parameter sample_fps=2.0 differs from the checkpoint's training value 5.0" in c.warnings


@pytest.mark.parametrize(
    ("params", "trained", "reason"),
    [
        ({"hop": 300}, {}, "hop=300 is larger than window=256"),  # the window is the checkpoint's
        ({"window": 32}, {}, "hop=64 is larger than window=32"),  # ... and so is the hop
        ({"ddim_steps": 1000}, {"train_timesteps": 100}, "ddim_steps=1000 must be in 1..100"),
        ({}, {"sampling_steps": 0}, "ddim_steps=0 must be in 1..1000"),
        ({"track_low_score": 0.6}, {}, "track_low_score=0.6 is above track_high_score=0.5"),
        ({"sample_fps": -1.0}, {}, "sample_fps=-1.0 outside 0.0..1000.0"),
        ({}, {"sample_fps": 0.0}, "stores no frame rate"),
        ({"checkpoint": ""}, {}, "parameter checkpoint is empty"),
    ],
)
def test_what_cannot_run_is_refused_naming_the_parameter(params, trained, reason):
    with pytest.raises(ValueError, match=None) as e:
        resolve(Settings(**{"checkpoint": "m.pt", **params}), _trained(**trained))
    assert reason in str(e.value)


def test_every_default_is_allowed_and_every_part_field_exists():
    s = Settings()
    assert all(validate(f.name, getattr(s, f.name)) is None for f in fields(Settings))
    for f in fields(Settings):
        if "part" in f.metadata:
            config, name = f.metadata["part"]
            assert name in config.__dataclass_fields__, f.name


def test_segment_status_is_the_messages():
    from rhas_msgs.msg import ActionSegment

    assert (SegmentStatus.ONGOING, SegmentStatus.FINAL) == (ActionSegment.STATUS_ONGOING, ActionSegment.STATUS_FINAL)
