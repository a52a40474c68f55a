"""The node's settings are declared once (rhas_ros/core/settings.py); the shipped parameter file
is generated from them and must stay equal."""

from __future__ import annotations

from dataclasses import fields

import yaml
from conftest import REPO

from rhas_ros.core.settings import DESCRIPTIONS, Settings, yaml_text


def test_params_file_lists_every_parameter_with_its_default_and_description():
    assert '"config", "rhas.yaml"' in (REPO / "launch" / "rhas.launch.py").read_text()
    text = (REPO / "config" / "rhas.yaml").read_text()
    assert text == yaml_text(), "regenerate: python -m rhas_ros.core.settings > config/rhas.yaml"
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert params == {f.name: f.default for f in fields(Settings)}
    for line in text.splitlines()[5:]:
        name, comment = line.split(":", 1)[0].strip(), line.split("#", 1)[1]
        assert DESCRIPTIONS[name] in comment
