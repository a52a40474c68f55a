"""rhas_node in a process of its own, as a robot runs it: its command line, its log, its stop."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from pathlib import Path

from dds_processes import spawn
from rhas_client import IMAGE_DEPTH
from tiny import tiny_node_params

REPO = Path(__file__).resolve().parents[2]
SHIPPED_PARAMS = REPO / "config" / "rhas.yaml"


def node_params(assets: Path, **params) -> dict:
    """The test node's parameters: the test assets (tiny CLIP, tiny checkpoint, external boxes, small
    windows, autostart) and ``params`` on top.

    Every frame a test sends is processed, however slow or loaded the machine: reliable images with
    a deep history (the test client's publisher keeps as many, rhas_client.IMAGE_DEPTH) and the
    ``all`` queue policy (the node falls behind instead of dropping). A test of dropping itself
    sets ``queue_policy="latest"`` and asserts only what holds at any speed."""
    base = tiny_node_params(
        assets / "model.pt", assets / "clip_model", detector="external", sample_fps=100.0, window=16, hop=4,
        min_window_frames=4, ddim_steps=3, torch_threads=1, autostart=True, image_qos="reliable",
        image_qos_depth=IMAGE_DEPTH, queue_policy="all",
    )  # fmt: skip
    return {**base, **params}


def overrides(params: dict) -> list[str]:
    """-p NAME:=VALUE arguments, as after --ros-args (rhas_bag takes the same)."""
    out = []
    for k, v in params.items():
        out += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
    return out


def node_args(assets: Path, **params) -> list[str]:
    """``python -m rhas_ros.node`` with the shipped parameter file and ``node_params``."""
    return ["-m", "rhas_ros.node", "--ros-args", "--params-file", str(SHIPPED_PARAMS),
            *overrides(node_params(assets, **params))]  # fmt: skip


class NodeProcess:
    """A started rhas_node; its stderr (the log) is collected by a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self, since: int = 0) -> str:
        return "".join(self.lines[since:])

    def wait_for_log(self, text: str, timeout: float = 60) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and text not in self.log():
            time.sleep(0.05)
        return text in self.log()

    def stop(self, sig=signal.SIGINT, timeout: float = 20) -> int | None:
        """Send ``sig`` and wait for the exit -> the exit code (None: still running after ``timeout``)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=5)
        return self.proc.returncode


@contextlib.contextmanager
def rhas_node(assets: Path, env: dict, **params):
    """Start rhas_node with ``node_args(assets, **params)``; always reaped."""
    with spawn(node_args(assets, **params), dict(env, OMP_NUM_THREADS="1")) as proc:
        yield NodeProcess(proc)
