"""`ros2 launch rhas_ros rhas.launch.py` under a supervisor and next to a user's files: SIGTERM
(docker stop, systemd) and SIGHUP (a closed terminal) stop it as Ctrl-C does — open segments FINAL,
the node gone, nothing left — and the README's plain `ros2 topic pub --once` text is heard every
time without a QoS warning. (A user's params file against the launch arguments: test_ros2_cli.)"""

from __future__ import annotations

import signal
import time

import pytest
from launch_util import (
    NEEDS_ROS2,
    Background,
    argv,
    heard,
    make_assets,
    readme_block,
    run,
    stop_daemon_and_check_nothing_left,
)

pytestmark = NEEDS_ROS2

LAUNCH = readme_block("### In the venv")[0]  # the README's launch line (demo_out/ -> the test's assets)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("launch_signals"))


@pytest.fixture
def env(ros_env):
    yield dict(ros_env, OMP_NUM_THREADS="1")
    stop_daemon_and_check_nothing_left(ros_env)


def segments_open_then_stop(launch, c, sig, twice: bool = False) -> int | None:
    """Play until segments are open, send ``sig`` to ros2 launch (twice: a SIGTERM follows while it
    stops) -> its exit code (None: still running after 60 s, which only stops a hung test; how long a
    stop takes is docs/benchmarks.md's)."""
    c.wait_for_node(timeout=120)
    c.send_text(c.texts[0])
    # The launched node runs the shipped parameters (latest-wins queue): frames in lockstep with it.
    c.play_until(c.open_segments, first=0)
    assert c.open_segments(), "segments open before the signal"
    launch.proc.send_signal(sig)
    if twice:
        time.sleep(0.3)
        launch.proc.send_signal(signal.SIGTERM)
    try:
        launch.proc.wait(timeout=60)
    except Exception:
        return None
    c.spin_until(lambda: not c.open_segments(), 60)  # the closing messages
    return launch.proc.returncode


@pytest.mark.parametrize(
    ("sig", "twice"),
    [
        (signal.SIGTERM, False),  # docker stop, systemd: one SIGTERM
        pytest.param(signal.SIGHUP, True, marks=pytest.mark.slow),  # a closed terminal, then a second signal
    ],
)
def test_sigterm_and_sighup_stop_the_launch_as_ctrl_c_does(assets, env, dds_client, sig, twice):
    launch = Background(argv(LAUNCH, assets), env)
    try:
        c = dds_client()
        code = segments_open_then_stop(launch, c, sig, twice)
        assert code == 0, (code, launch.text[-2000:])
        assert not c.open_segments(), "every open segment was published FINAL"
        assert "process has finished cleanly" in launch.text, launch.text[-2000:]
    finally:
        launch.stop()  # reaps; the env fixture checks nothing of the domain is left


def test_the_readme_text_command_is_heard_every_time_without_a_qos_warning(assets, env):
    """The README's `ros2 topic pub --once ... /referring_text` right after activation, three times
    (it once went unheard in five tries, and each logged 'incompatible QoS ... No messages will be
    received' although the message was received)."""
    (pub,) = [
        c for c in readme_block("and in another (a test runs all of these") if "topic pub --once --keep-alive" in c
    ]
    launch = Background(argv(LAUNCH, assets), env)
    try:
        assert launch.wait_for(r"active: images on /image", 120), launch.text[-3000:]
        for n in range(3):
            text = f"the person number {n}"
            res = run(argv(pub.replace("the tall person in the red shirt", text), assets), env, timeout=60)
            assert res.returncode == 0, res.stderr[-1500:]
            assert launch.wait_for(heard(text), 60), f"try {n} unheard\n{launch.text[-2000:]}"
        assert "incompatible QoS" not in launch.text and "No messages will be received" not in launch.text
    finally:
        assert launch.stop() == 0
