"""`ros2 launch rhas_ros rhas.launch.py` with a user's params file and launch arguments, and with a
checkpoint that does not exist, as subprocesses on an isolated DDS domain (the README's own
commands: test_ros2_cli.py). Nothing may be left running."""

from __future__ import annotations

import pytest
import yaml
from graph_probe import GraphProbe
from launch_util import (
    NEEDS_ROS2,
    ROS2,
    Background,
    argv,
    make_assets,
    readme_block,
    stop_daemon_and_check_nothing_left,
)

pytestmark = NEEDS_ROS2

LAUNCH = readme_block("### In the venv")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("launch_params"))


@pytest.fixture
def env(ros_env):
    yield dict(ros_env, OMP_NUM_THREADS="1")
    stop_daemon_and_check_nothing_left(ros_env)


def test_launch_arguments_and_the_users_params_file(assets, env, tmp_path):
    """A user's params file holds the checkpoint, backbone, device and detector (the launch defaults
    used to override those with '' and blip2, so configure failed on an empty checkpoint): the node
    reaches ACTIVE with them; namespace, image_topic and a detector given on the command line take
    effect, the given detector over the file's."""
    params = tmp_path / "my_params.yaml"
    doc = {"/**": {"ros__parameters": {
        "checkpoint": str(assets / "run" / "best.pt"), "backbone": "clip", "backbone_model": str(assets / "clip_model"),
        "device": "cpu", "detector": "external", "min_window_frames": 7, "smooth": 3, "image_qos": "reliable",
    }}}  # fmt: skip
    params.write_text(yaml.safe_dump(doc))
    launch = Background([str(ROS2), "launch", "rhas_ros", "rhas.launch.py", "namespace:=robot",
                         "image_topic:=/camera/color/image_raw", f"params_file:={params}", "detector:=full_frame"],
                        env)  # fmt: skip
    try:
        assert launch.wait_for(r"active: images on /camera/color/image_raw, .* detector full_frame", 120), launch.text[
            -3000:
        ]
        probe = GraphProbe(int(env["ROS_DOMAIN_ID"]))
        try:
            assert probe.until(lambda: "/robot/rhas_node" in probe.node_names()), probe.node_names()
            assert probe.param("/robot/rhas_node", "min_window_frames") == 7
            assert probe.until(lambda: probe.node.count_subscribers("/camera/color/image_raw") == 1)
            wanted = ("/robot/action_segments", "/robot/referring_text", "/robot/detections")
            assert probe.until(lambda: all(t in probe.topics() for t in wanted)), probe.topics()
        finally:
            probe.close()
    finally:
        code = launch.stop()
    assert code == 0


def test_a_missing_checkpoint_is_logged_and_the_node_stays_unconfigured(assets, env):
    """Defined behaviour: the launch keeps running, the node logs why configure failed and stays
    unconfigured (a parameter fix and a configure by hand can still bring it up)."""
    cmd = argv(LAUNCH[0].replace("demo_out/run/best.pt", "demo_out/run/missing.pt"), assets)
    launch = Background(cmd, env)
    try:
        assert launch.wait_for(r"configure failed: .*missing\.pt does not exist", 120), launch.text[-3000:]
        probe = GraphProbe(int(env["ROS_DOMAIN_ID"]))
        try:
            assert probe.lifecycle_state("/rhas_node") == "unconfigured"
        finally:
            probe.close()
        assert launch.proc.poll() is None, "the launch keeps running"
    finally:
        code = launch.stop()
    assert code == 0


def test_the_launch_files_signal_hook_still_exists_in_this_launch():
    """rhas.launch.py hands SIGTERM and SIGHUP to launch's orderly shutdown through launch's signal
    manager, which has no public way in (a name-mangled class attribute). If a launch release renames
    it, the launch file falls back to launch's own handling (SIGTERM ends launch at once and orphans
    the node): this fails first, loudly, instead of test_launch_signals failing by a symptom."""
    from launch.utilities.signal_management import AsyncSafeSignalManager

    assert hasattr(AsyncSafeSignalManager, "_AsyncSafeSignalManager__current"), (
        "launch changed its signal manager: update stop_like_ctrl_c in launch/rhas.launch.py"
    )
