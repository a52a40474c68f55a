"""The README's "On a ROS 2 distro" section, run as written with the venv as the underlay: a
colcon workspace builds rhas_msgs (cmake) and rhas_ros (ament_python), and `ros2 launch` from
the sourced install/setup.bash brings the workspace's rhas_node to ACTIVE.

Differences from a distro, and only these: `source .venv/bin/activate` stands in for
`source /opt/ros/$ROS_DISTRO/setup.bash`; rosdep is not run (no distro index here: the venv
already has every dependency); the repository's files are copied where `git clone` would put
them (the working tree, so uncommitted changes are built too); the launch line gets the tiny
offline assets' arguments after the README's `checkpoint:=`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from launch_util import REPO, ROS2, Background, make_assets, processes_with_domain, readme_block

VENV = Path(sys.executable).parent.parent

pytestmark = [
    pytest.mark.dds,
    pytest.mark.skipif(
        not ROS2.exists() or shutil.which("colcon", path=str(VENV / "bin")) is None,
        reason="needs colcon and the ros2 CLI in the venv (scripts/setup_env.sh with ../shared/ros-launch)",
    ),
]

EXPECTED = [
    "mkdir -p ~/rhas_ws/src && cd ~/rhas_ws/src",
    "git clone <this repository> rhas_ros",
    "cd ~/rhas_ws",
    "source /opt/ros/$ROS_DISTRO/setup.bash",
    "rosdep install -y --ignore-src --from-paths src/rhas_ros src/rhas_ros/rhas_msgs",
    "colcon build --base-paths src/rhas_ros src/rhas_ros/rhas_msgs",
    "source install/setup.bash",
    "ros2 launch rhas_ros rhas.launch.py checkpoint:=/path/to/best.pt",
]


def copy_repository(dst: Path) -> None:
    """The files `git clone` of the working tree gives: tracked and untracked-but-not-ignored."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / name.decode()
        if src.is_file():
            target = dst / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


def test_colcon_workspace_builds_and_launches(tmp_path, ros_env):
    lines = readme_block("### On a ROS 2 distro")
    assert lines == EXPECTED, "the README's distro section changed: update this test with it"
    ws = tmp_path / "rhas_ws"
    (ws / "src").mkdir(parents=True)  # line 1
    copy_repository(ws / "src" / "rhas_ros")  # line 2
    underlay = f"source {VENV}/bin/activate"  # line 4; line 5 (rosdep) cannot run here
    env = {k: v for k, v in ros_env.items() if k not in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH")}
    build = subprocess.run(
        ["bash", "-c", f"set -e; cd {ws}; {underlay}; {lines[5]}"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert "2 packages finished" in build.stdout, build.stdout[-2000:]
    sourced = subprocess.run(
        ["bash", "-c", f"cd {ws}; {underlay}; {lines[6]}; env -0"], env=env, capture_output=True, timeout=60
    )  # line 7
    assert sourced.returncode == 0, sourced.stderr
    launch_env = dict(item.split("=", 1) for item in sourced.stdout.decode().split("\0") if "=" in item)
    launch_env["OMP_NUM_THREADS"] = "1"
    prefix = subprocess.run(["ros2", "pkg", "prefix", "rhas_ros"], env=launch_env, capture_output=True, text=True)
    assert prefix.stdout.strip() == str(ws / "install" / "rhas_ros"), prefix.stdout + prefix.stderr
    assets = make_assets(tmp_path / "assets")
    cmd = lines[7].replace("/path/to/best.pt", str(assets / "run" / "best.pt")).split()
    cmd += ["backbone:=clip", f"backbone_model:={assets / 'clip_model'}", "device:=cpu"]
    launch = Background(cmd, launch_env)  # line 8
    try:
        assert launch.wait_for(r"active: images on /image", 120), launch.text[-3000:]
        running = [c for c in processes_with_domain(ros_env["ROS_DOMAIN_ID"]) if "rhas_node" in c]
        assert any(str(ws / "install" / "rhas_ros" / "lib" / "rhas_ros" / "rhas_node") in c for c in running), running
    finally:
        code = launch.stop()
    assert code == 0, launch.text[-2000:]
    assert not processes_with_domain(ros_env["ROS_DOMAIN_ID"])
    assert os.path.isfile(ws / "install" / "rhas_msgs" / "share" / "rhas_msgs" / "msg" / "ActionSegment.msg")
