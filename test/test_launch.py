"""The launch file: checked statically everywhere, and with launch_testing where launch_ros exists."""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import fields

import pytest
import yaml
from conftest import REPO

from rhas_ros.core.settings import DESCRIPTIONS, Settings, yaml_text

LAUNCH = REPO / "launch" / "rhas.launch.py"


def _launch_ast():
    return ast.parse(LAUNCH.read_text())


def test_executable_is_a_console_script():
    calls = [
        n for n in ast.walk(_launch_ast()) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "LifecycleNode"
    ]
    assert len(calls) == 1
    kw = {k.arg: k.value for k in calls[0].keywords}
    assert kw["package"].value == "rhas_ros"
    executable = kw["executable"].value
    assert f'"{executable} = rhas_ros.node:main"' in (REPO / "setup.py").read_text()


def test_params_file_lists_every_parameter_with_its_default_and_description():
    """config/rhas.yaml is generated from the one settings dataclass and kept equal to it."""
    assert '"config", "rhas.yaml"' in LAUNCH.read_text()
    text = (REPO / "config" / "rhas.yaml").read_text()
    assert text == yaml_text(), "regenerate: python -m rhas_ros.core.settings > config/rhas.yaml"
    params = yaml.safe_load(text)["/**"]["ros__parameters"]
    assert params == {f.name: f.default for f in fields(Settings)}
    for line in text.splitlines()[5:]:
        name, comment = line.split(":", 1)[0].strip(), line.split("#", 1)[1]
        assert DESCRIPTIONS[name] in comment


@pytest.mark.skipif(
    importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not on PyPI (ROS install only)"
)
def test_launch_description_builds():
    spec = importlib.util.spec_from_file_location("rhas_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    assert any(type(e).__name__ == "LifecycleNode" for e in ld.entities)
