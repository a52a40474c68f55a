"""Running a lifecycle node as a process: autostart, spin, and an orderly stop on a signal.

rclpy's own SIGINT/SIGTERM handler invalidates the context at once, under a worker that may be
publishing and an executor that may be taking a message (both failed that way). Here a signal
ends the spin loop between two spins (or interrupts start-up and autostart's configure), the
node's ``finish`` runs (stop intake, close what is open), the node is destroyed, and the context
is shut down last. A node that reaches the finalized state (the lifecycle ``shutdown``
transition) ends the process too, once the transition's reply is on its way.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

FINALIZED_GRACE_S = 0.5  # after the shutdown transition, before the process exits
# Ctrl-C, docker stop / systemd, a closed terminal: each is an orderly stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # prctl(2)


class _Stop:
    spinning = False  # in the spin loop: finish the current spin, then stop
    requested = False

    def on_signal(self, signum, frame) -> None:
        if self.spinning:
            self.requested = True
        else:  # start-up or autostart's configure: nothing to finish
            raise KeyboardInterrupt


def die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (ros2 launch killed with SIGKILL, a supervisor
    that crashed): the node then closes its segments and exits instead of living on orphaned."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def autostart(node: LifecycleNode) -> None:
    """configure -> activate when the node's ``autostart`` parameter says so (no lifecycle manager)."""
    if not node.get_parameter("autostart").value:
        return
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal("autostart: configure failed (see above); staying unconfigured")
    elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal("autostart: activate failed")


def run(make_node: Callable[[], LifecycleNode], args=None, finish: Callable[[LifecycleNode], None] | None = None,
        name: str = "node") -> None:  # fmt: skip
    """Create the node, autostart it, spin until SIGINT/SIGTERM/SIGHUP (or the finalized state), then
    ``finish(node)`` and destroy it.
    A ValueError or ParameterException while creating the node exits with status 2 and the reason."""
    stop = _Stop()
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop.on_signal)
    die_with_parent()
    try:
        with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
            try:
                node = make_node()
            except (rclpy.exceptions.ParameterException, ValueError) as e:
                print(f"{name}: error: {e}", file=sys.stderr)
                sys.exit(2)
            try:
                autostart(node)
                executor = SingleThreadedExecutor()
                executor.add_node(node)
                stop.spinning = True
                while rclpy.ok() and not stop.requested and not getattr(node, "finalized", False):
                    executor.spin_once(timeout_sec=0.25)  # returns often enough to see a signal
                if getattr(node, "finalized", False):  # the shutdown transition: let its reply reach the caller
                    end = time.monotonic() + FINALIZED_GRACE_S
                    while rclpy.ok() and time.monotonic() < end:
                        executor.spin_once(timeout_sec=0.05)
            finally:
                if finish is not None:
                    finish(node)
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
