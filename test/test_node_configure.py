"""on_configure validates everything and fails cleanly with the reason (in-process rclpy node)."""

from __future__ import annotations

import subprocess
import sys

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
    cfg = Config(model=tiny_model_config(feature_dim=24, num_classes=5))
    cfg.data.backbone = "clip"  # as training records it from the extracted features
    hopadiff.save_checkpoint(root / "clip_trained.pt", hopadiff.HopaDIFF(cfg.model), cfg, labels)
    return root


@pytest.fixture
def make_node(ros_env, monkeypatch):
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    from rhas_ros.node import RhasNode

    rclpy.init()
    nodes = []

    def make(**params):
        # Namespaced: a participant of this process can outlive rclpy.shutdown() for a while, and a
        # stale /rhas_node/change_state on the domain would answer a later test's launch instead.
        node = RhasNode(
            namespace="in_process_test", parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
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
        ({"hop": 300}, "hop=300 is larger than window=256"),  # window from the checkpoint (256)
        ({"window": 1}, "window=1: a window needs at least 2 frames"),
        ({"checkpoint": ""}, "parameter checkpoint is empty"),
    ]
    + ([] if torch.cuda.is_available() else [({"device": "cuda"}, "CUDA is not available")]),
)
def test_configure_fails_with_the_reason(assets, make_node, capfd, over, reason):
    node = make_node(**_params(assets, **over))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert reason in capfd.readouterr().err
    assert node.pipeline is None


def test_a_wrong_backbone_fails_fast_without_the_hub(assets, make_node, capfd):
    """A CLIP-trained checkpoint with the default blip2 backbone: refused from the checkpoint's
    metadata before any backbone is loaded (it once spent 48 s in hub retries first): the hub is
    allowed, and the log names neither the hub's model nor a connection; how long the refusal takes
    is docs/benchmarks.md's."""
    params = _params(assets, checkpoint="{assets}/clip_trained.pt", backbone="blip2", backbone_model="")
    params["local_files_only"] = False
    node = make_node(**params)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    err = capfd.readouterr().err
    assert "was trained on clip features; parameter backbone is 'blip2'" in err
    assert "blip2-itm-vit-g" not in err and "onnect" not in err, "the backbone was never asked for"
    assert node.pipeline is None


def _subscribed(node) -> set[str]:
    return {sub.topic_name for sub in node.subscriptions}


def test_configure_activate_cleanup_succeed(assets, make_node, capfd):
    node = make_node(**_params(assets, sample_fps=2.0))
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    # window and hop default to the checkpoint's training values; a set value that differs is warned about
    c = node.config
    assert (c.stream.window, c.stream.hop, c.sample_fps) == (256, 64, 2.0)
    assert "sample_fps=2.0 differs from the checkpoint's training value 5.0" in capfd.readouterr().err
    assert node.pipeline is not None and node.pipeline.labels == [f"a{i}" for i in range(5)]
    assert "/in_process_test/image" not in _subscribed(node), "inputs are subscribed only while active"
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert {"/in_process_test/image", "/in_process_test/referring_text"} <= _subscribed(node)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert "/in_process_test/image" not in _subscribed(node)
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline is None and node.config is None


def test_parameters_while_configured_are_refused_or_applied_at_once(assets, make_node):
    """Configure-time parameters are refused with a reason while configured; dynamic ones are
    validated against their ranges and reach the running pipeline at once."""
    node = make_node(**_params(assets))
    assert node.set_parameters([Parameter("hop", value=100)])[0].successful, "unconfigured: read at configure"
    node.set_parameters([Parameter("hop", value=32)])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    for name, value in [("hop", 100), ("detector", "evil"), ("window", 64), ("checkpoint", "/etc/passwd")]:
        result = node.set_parameters([Parameter(name, value=value)])[0]
        assert not result.successful and "takes effect at configure" in result.reason, name
    assert node.get_parameter("hop").value == 32
    for name, value in [("sample_fps", 5000.0), ("threshold", 1.5), ("sample_fps", -1.0)]:
        assert not node.set_parameters([Parameter(name, value=value)])[0].successful, name  # outside the range
    assert node.set_parameters([Parameter("threshold", value=0.8)])[0].successful
    assert node.set_parameters([Parameter("sample_fps", value=0.5)])[0].successful
    assert node.pipeline.segmenter.cfg.threshold == 0.8 and node.config.sample_fps == 0.5
    assert node.set_parameters([Parameter("grounding_switch_frames", value=7)])[0].successful
    assert node.pipeline.grounder.cfg.switch_frames == 7
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert node.set_parameters([Parameter("hop", value=16)])[0].successful


def test_runtime_values_configure_would_refuse_are_refused_and_change_nothing(assets, make_node):
    """A runtime change is resolved as configure resolves it: what cannot run is refused with the
    reason (the DDIM steps the checkpoint's schedule has, the tracker's score order), a change of
    several parameters applies all or nothing, and 0 means the checkpoint's value as at configure."""
    node = make_node(**_params(assets, sample_fps=2.0))
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    before = node.config
    for params, reason in [
        ([Parameter("ddim_steps", value=1000)], "ddim_steps=1000 must be in 1..100"),  # the tiny schedule: 100
        ([Parameter("track_low_score", value=0.9)], "track_low_score=0.9 is above track_high_score=0.5"),
        ([Parameter("threshold", value=0.3), Parameter("track_high_score", value=0.05)], "is above track_high_score"),
    ]:
        result = node.set_parameters_atomically(params)
        assert not result.successful and reason in result.reason, result.reason
        assert node.config is before and node.pipeline.config is before, "a refused change changes nothing"
    assert node.get_parameter("threshold").value == 0.5
    assert node.set_parameters([Parameter("sample_fps", value=0.0)])[0].successful
    assert node.config.sample_fps == 5.0, "0 = the checkpoint's rate, at runtime as at configure"
    assert node.set_parameters([Parameter("ddim_steps", value=0)])[0].successful
    assert node.pipeline.segmenter.cfg.ddim_steps == 5, "0 = the checkpoint's DDIM steps"


def test_diagnostics_are_published_from_construction_and_name_the_state(assets, make_node):
    """diagnostic_updater's statuses, from the node's construction: unconfigured, then a failed
    configure with its reason (ERROR), then configured; the names carry the node's full name."""
    from diagnostic_msgs.msg import DiagnosticStatus

    node = make_node(**_params(assets, checkpoint="/nonexistent/model.pt"))
    published = []
    node._diag.updater.publisher.publish = published.append  # capture what the steady timer would send

    def pipeline():
        node._diag.updater.force_update()
        (st,) = [s for s in published[-1].status if s.name.endswith(": pipeline")]
        return st

    st = pipeline()
    assert st.name == "/in_process_test/rhas_node: pipeline" and st.level == DiagnosticStatus.WARN
    assert st.message == "unconfigured: not processing"
    names = {s.name.rsplit(": ", 1)[1] for s in published[-1].status}
    assert names == {"pipeline", "images in", "image stamps", "segments out"}
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    st = pipeline()
    assert st.level == DiagnosticStatus.ERROR and "configure failed" in st.message and "model.pt" in st.message
    node.set_parameters([Parameter("checkpoint", value=str(assets / "good.pt"))])
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert pipeline().message == "inactive: not processing"
    node._counts["stamp_repeated"] += 3
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    st = pipeline()
    assert st.level == DiagnosticStatus.WARN and st.message == "images with repeated stamps: 3"


def test_misspelled_parameters_are_named(assets, make_node, capfd):
    make_node(**_params(assets), chekpoint="x.pt", sample_fsp=2.0)
    err = capfd.readouterr().err
    assert "'chekpoint' is not a parameter of rhas_node and is ignored (did you mean 'checkpoint'?)" in err
    assert "'sample_fsp' is not a parameter of rhas_node and is ignored (did you mean 'sample_fps'?)" in err


def test_command_line_help_and_out_of_range_values(ros_env, capsys):
    from rhas_ros.node import main

    main(["--help"])  # prints and returns before anything touches ROS
    out = capsys.readouterr().out
    assert out.startswith("usage: rhas_node") and "sample_fps" in out
    env = dict(ros_env)
    res = subprocess.run(
        [sys.executable, "-m", "rhas_ros.node", "--ros-args", "-p", "window:=-5"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert res.returncode == 2 and "rhas_node: error:" in res.stderr and "window out of range" in res.stderr
    assert "Traceback" not in res.stderr


def test_hri_without_hri_msgs_fails_configure_saying_how_to_get_it(assets, make_node, capfd, monkeypatch):
    """hri_msgs has no Kilted release and is not a declared dependency: a node without it runs every
    other source, and configure with external_type hri fails naming what to install."""
    monkeypatch.setitem(sys.modules, "hri_msgs", None)  # what Python does when the package is absent
    monkeypatch.setitem(sys.modules, "hri_msgs.msg", None)
    node = make_node(**_params(assets, detector="external", external_type="hri"))
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "needs the ROS4HRI messages (hri_msgs)" in capfd.readouterr().err and node.pipeline is None
    node = make_node(**_params(assets, detector="external", external_type="detection2d"))
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS


def test_ros4hri_body_topics_follow_the_prefix_and_rclpy_name_rules(make_node, assets):
    """The per-body topics are under hri_bodies_topic's prefix (a relative one is under the node's
    namespace); an id is used only when rclpy accepts the topic it makes."""
    from rhas_ros.hri import bodies_prefix, body_topic

    node = make_node(**_params(assets))
    assert bodies_prefix("/humans/bodies/tracked") == "/humans/bodies"
    assert bodies_prefix("robot1/humans/tracked") == "robot1/humans"
    assert body_topic(node, "/humans/bodies", "b1", "actions") == "/humans/bodies/b1/actions"
    assert body_topic(node, "humans/bodies", "b1", "roi") == "humans/bodies/b1/roi"
    for bad in ("1x", "a-b", "", "ünï", "no/topic", "x" * 65):
        assert body_topic(node, "/humans/bodies", bad, "roi") is None, bad
