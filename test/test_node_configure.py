"""on_configure validates everything and fails cleanly with the reason (in-process rclpy node)."""

from __future__ import annotations

import pytest
import rclpy
import torch
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from tiny import tiny_model_config, tiny_node_params

import hopadiff
from hopadiff.config import Config
from hopadiff.features.tiny import make_tiny_clip


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("configure")
    make_tiny_clip(root / "clip")
    labels = [f"a{i}" for i in range(5)]
    for name, dim in (("good.pt", 24), ("wrong_dim.pt", 16)):
        cfg = Config(model=tiny_model_config(feature_dim=dim, num_classes=5))
        hopadiff.save_checkpoint(root / name, hopadiff.HopaDIFF(cfg.model), cfg, labels)
    return root


@pytest.fixture
def make_node(ros_env, monkeypatch):
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    from rhas_ros.node import RhasNode

    rclpy.init()
    nodes = []

    def make(**params):
        node = RhasNode(parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
        nodes.append(node)
        return node

    yield make
    for n in nodes:
        n.destroy_node()
    rclpy.shutdown()


def _params(assets, **over):
    over = {k: v.format(assets=assets) if isinstance(v, str) else v for k, v in over.items()}
    params = tiny_node_params(assets / "good.pt", assets / "clip", detector="full_frame")
    params.update(over)  # a test may replace the checkpoint or the backbone folder
    return params


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"checkpoint": "/nonexistent/model.pt"}, "/nonexistent/model.pt does not exist"),
        ({"checkpoint": "{assets}/wrong_dim.pt"}, "trained on 16-dim features, the backbone gives 24"),
        ({"detector": "yolo"}, "parameter detector='yolo' not allowed"),
        ({"backbone_model": "/nonexistent/clip"}, "cannot load clip backbone"),
        ({"hop": 300, "window": 256}, "hop=300 is larger than window=256"),
        ({"checkpoint": ""}, "parameter checkpoint is empty"),
    ]
    + ([] if torch.cuda.is_available() else [({"device": "cuda"}, "CUDA is not available")]),
)
def test_configure_fails_with_the_reason(assets, make_node, capfd, over, reason):
    node = make_node(**_params(assets, **over))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert reason in capfd.readouterr().err
    assert node.pipeline is None


def _subscribed(node) -> set[str]:
    return {sub.topic_name for sub in node.subscriptions}


def test_configure_activate_cleanup_succeed(assets, make_node):
    node = make_node(**_params(assets))
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline is not None and node.labels == [f"a{i}" for i in range(5)]
    assert "/image" not in _subscribed(node), "inputs are subscribed only while active"
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert {"/image", "/referring_text"} <= _subscribed(node)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert "/image" not in _subscribed(node)
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline is None
