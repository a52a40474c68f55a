"""What the `ros2` CLI tests share: small node assets in the demo's layout, the README's command
blocks, and `ros2 launch` run as a user runs it (stopped with SIGINT, never left behind)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hopadiff
from hopadiff.config import Config, DataConfig
from hopadiff.features.tiny import make_tiny_clip
from hopadiff.synth.video import write_video_dataset

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROS2 = BIN / "ros2"


def make_assets(root: Path) -> Path:
    """The demo's layout (run/best.pt, clip_model/, clips_demo/) with a tiny model: W=16, hop 4."""
    from tiny import tiny_model_config

    clip = write_video_dataset(root / "clips_demo", clips=1, frames=60, persons=3, fps=10)
    make_tiny_clip(root / "clip_model")
    cfg = Config(
        model=tiny_model_config(feature_dim=24, num_classes=len(clip["classes"])),
        data=DataConfig(window=16, hop=4, sample_fps=10.0, backbone="clip"),
    )
    (root / "run").mkdir(exist_ok=True)
    hopadiff.save_checkpoint(root / "run" / "best.pt", hopadiff.HopaDIFF(cfg.model), cfg, clip["classes"])
    return root


def readme_block(heading: str) -> list[str]:
    """The commands of the first ```bash block after ``heading`` in README.md (comments dropped)."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(heading) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def argv(command: str, assets: Path) -> list[str]:
    """A README line as argv: .venv/bin/ -> this venv, demo_out/ -> the test's assets."""
    command = command.replace("demo_out/", f"{assets}/")
    parts = shlex.split(command)
    if parts[0].startswith(".venv/bin/"):
        parts[0] = str(BIN / parts[0].removeprefix(".venv/bin/"))
    return parts


def run(parts: list[str], env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(parts, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


class Background:
    """A long-running command (ros2 launch, ros2 topic echo) with its output collected; stopped with
    SIGINT (what launch forwards to its nodes), then its whole process group killed if still there."""

    def __init__(self, parts: list[str], env: dict):
        self.proc = subprocess.Popen(
            parts, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")))
        self._reader.daemon = True
        self._reader.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if re.search(pattern, self.text):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return bool(re.search(pattern, self.text))
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything the command left in its group
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        return self.proc.returncode


NEEDS_ROS2 = [
    pytest.mark.dds,
    pytest.mark.skipif(
        not ROS2.exists(),
        reason="the ros2 CLI is not in the venv: scripts/setup_env.sh found no ../shared/ros-launch "
        "(set RHAS_ROS_LAUNCH), or use a ROS distro",
    ),
]  # a test module's pytestmark when it runs the ros2 CLI


def stop_daemon_and_check_nothing_left(ros_env: dict) -> None:
    """What a CLI test does when it ends: the ros2 daemon stopped, no process of its domain left."""
    run([str(ROS2), "daemon", "stop"], dict(ros_env), timeout=30)
    time.sleep(0.5)
    left = processes_with_domain(ros_env["ROS_DOMAIN_ID"])
    assert not left, f"processes left behind: {left}"


def readme_commands(prefix: str) -> list[str]:
    """The README's commands for a launched node (the block a test runs) that start with ``prefix``."""
    found = [c for c in readme_block("and in another (a test runs all of these") if c.startswith(prefix)]
    assert found, f"README lists no command starting with {prefix!r}"
    return found


def processes_with_domain(domain: str) -> list[str]:
    """Command lines of processes still running with ROS_DOMAIN_ID=domain (none must be left)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            if f"ROS_DOMAIN_ID={domain}".encode() in env:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def heard(text: str) -> str:
    """The pattern of the node's INFO line for a referring text it received: its length and hash,
    not the text (log_referring_text is off by default)."""
    from rhas_ros.core.intake import mentioned

    return re.escape(f"referring text: {mentioned(text)}")
