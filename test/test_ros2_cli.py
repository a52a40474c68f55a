"""The ROS user's path, for real: `ros2 launch rhas_ros rhas.launch.py` and the README's `ros2`
commands, run verbatim as subprocesses on an isolated DDS domain (only the asset folder
demo_out/ is replaced by small assets of the same layout). Nothing may be left running."""

from __future__ import annotations

import time

import pytest
from launch_util import (
    NEEDS_ROS2,
    ROS2,
    Background,
    argv,
    heard,
    make_assets,
    readme_block,
    readme_commands,
    run,
    stop_daemon_and_check_nothing_left,
)

pytestmark = NEEDS_ROS2

LAUNCH = readme_block("### In the venv")
COMMANDS = readme_commands("")  # all of them, in order


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("ros2_cli"))


@pytest.fixture
def env(ros_env):
    yield dict(ros_env, OMP_NUM_THREADS="1")
    stop_daemon_and_check_nothing_left(ros_env)


def test_readme_commands_against_a_launched_node(assets, env):
    assert len(LAUNCH) == 1 and LAUNCH[0].startswith(".venv/bin/ros2 launch rhas_ros rhas.launch.py")
    # A text latched before the node starts must reach it (transient-local subscription).
    early = Background(
        [str(ROS2), "topic", "pub", "--once", "-w", "0", "--keep-alive", "120", "--qos-durability",
         "transient_local", "--qos-reliability", "reliable", "/referring_text", "std_msgs/msg/String",
         "data: 'the text latched before the start'"],
        env,
    )  # fmt: skip
    launch = Background(argv(LAUNCH[0], assets), env)
    try:
        assert launch.wait_for(r"active: images on /image", 120), launch.text[-3000:]
        assert launch.wait_for(heard("the text latched before the start"), 60), launch.text[-2000:]
        early.stop()
        seen = [argv(c, assets) for c in COMMANDS]
        done = []

        def step(i, timeout=60):
            res = run(seen[i], env, timeout)
            for _ in range(3):  # a graph verb's first call starts the daemon, which may not have
                if "not found" not in res.stderr.lower():  # discovered the node yet: run it again
                    break
                time.sleep(2)
                res = run(seen[i], env, timeout)
            done.append(COMMANDS[i])
            assert res.returncode == 0, f"{COMMANDS[i]}\n{res.stdout[-1500:]}\n{res.stderr[-1500:]}"
            return res.stdout

        assert "active [3]" in step(0)
        step(1)  # the plain `ros2 topic pub --once` (volatile) is heard
        assert launch.wait_for(heard("the tall person in the red shirt"), 60), launch.text[-2000:]
        echo = Background(seen[2], env)  # runs until stopped, as in a terminal
        done.append(COMMANDS[2])
        time.sleep(3)  # the echo subscribes
        out = step(3, timeout=180)  # the player plays the clip
        assert "| #1 |" in out, out
        echo.stop()
        assert "segments:" in echo.text and "label:" in echo.text and "segment_id:" in echo.text, echo.text[-2000:]
        assert "Transitioning successful" in step(4)
        time.sleep(2.0)  # the launch file must not re-activate the node
        state = run([str(ROS2), "lifecycle", "get", "/rhas_node"], env).stdout
        assert "inactive" in state, state
        assert "Transitioning successful" in step(5)
        assert "active [3]" in run([str(ROS2), "lifecycle", "get", "/rhas_node"], env).stdout
        assert "Set parameter successful" in step(6)
        assert "0.4" in step(7)
        step(8)  # transient-local publisher
        assert launch.wait_for(heard("the short person in the white shirt"), 60), launch.text[-2000:]
        step(9)
        assert len(done) == len(COMMANDS)
    finally:
        early.stop()
        code = launch.stop()
    assert code == 0, launch.text[-2000:]
    assert "process has finished cleanly" in launch.text, launch.text[-2000:]


def test_the_venv_is_an_ament_prefix_without_exporting_anything(ros_env):
    env = {k: v for k, v in ros_env.items() if k != "AMENT_PREFIX_PATH"}
    venv = str(ROS2.parent.parent)
    got = run([str(ROS2.parent / "python"), "-c", "import os; print(os.environ['AMENT_PREFIX_PATH'])"], env)
    assert got.stdout.split() == [venv], got.stdout + got.stderr
    prefix = run([str(ROS2), "pkg", "prefix", "rhas_ros"], env)
    assert prefix.stdout.strip() == venv, prefix.stderr
    executables = run([str(ROS2), "pkg", "executables", "rhas_ros"], env).stdout
    assert "rhas_ros rhas_node" in executables
    overlay = run([str(ROS2.parent / "python"), "-c", "import os; print(os.environ['AMENT_PREFIX_PATH'])"],
                  dict(env, AMENT_PREFIX_PATH="/opt/overlay"))  # fmt: skip
    assert overlay.stdout.strip() == f"/opt/overlay:{venv}", "a sourced workspace keeps precedence"
