"""Running a lifecycle node as a process: autostart, spin, and an orderly stop on a signal.

rclpy's own SIGINT/SIGTERM handler invalidates the context at once, under a worker that may be
publishing and an executor that may be taking a message (both failed that way). Here a signal
ends the spin loop between two spins (or skips what is left of start-up and autostart), the
node's ``finish`` runs (stop intake, close what is open), the node is destroyed, and the context
is shut down last. A node that reaches the finalized state (the lifecycle ``shutdown``
transition) ends the process too, once the transition's reply is on its way.

Once everything is closed the process ends at once (``exit_now``): Python's own teardown with
torch and transformers loaded took 1.1 s on an idle machine and over 5 s under load, and
CPython resets signal dispositions while it tears down, so the SIGTERM that ``ros2 launch``
sends 5 s after SIGINT killed a node that had already stopped cleanly (exit -15, seen in CI).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

FINALIZED_GRACE_S = 0.5  # after the shutdown transition, before the process exits
# Ctrl-C, docker stop / systemd, a closed terminal: each is an orderly stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # prctl(2)
# A long transition (configure), the answers beside it (get_state: the lifecycle services are
# reentrant) and the node's default group (subscriptions, timers, parameters).
EXECUTOR_THREADS = 3


class _Stop:
    """A stop signal only sets ``requested``; the run loop checks it between two spins, and autostart
    between configure and activate. Nothing is raised from the handler: an exception raised where a
    signal happens to land (an import's lock callback, a destructor) is swallowed or, for
    KeyboardInterrupt, makes CPython exit by SIGINT (-2) after a clean stop (both seen when the
    signal met transformers' imports in configure). A configure that has begun finishes first
    (seconds; minutes with inference_engine compile's first compile): nothing is open before activation.
    """

    requested = False

    def on_signal(self, signum, frame) -> None:
        self.requested = True


def die_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (ros2 launch killed with SIGKILL, a supervisor
    that crashed): the node then closes its segments and exits instead of living on orphaned."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def autostart(node: LifecycleNode, stopping: Callable[[], bool] = lambda: False) -> None:
    """configure -> activate when the node's ``autostart`` parameter says so (no lifecycle manager);
    a stop requested meanwhile skips what is left."""
    if not node.get_parameter("autostart").value or stopping():
        return
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal("autostart: configure failed (see above); staying unconfigured")
    elif not stopping() and node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().fatal("autostart: activate failed")


def exit_now(code: int = 0) -> None:
    """End the process without interpreter teardown: output flushed and exit handlers run first
    (everything of ROS is already destroyed and shut down; the node writes no files)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def run(make_node: Callable[[], LifecycleNode], args=None, finish: Callable[[LifecycleNode], None] | None = None,
        name: str = "node") -> None:  # fmt: skip
    """Create the node, autostart it, spin until SIGINT/SIGTERM/SIGHUP (or the finalized state), then
    ``finish(node)``, destroy it, shut the context down and end the process (``exit_now``).
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
            executor = MultiThreadedExecutor(num_threads=EXECUTOR_THREADS)
            executor.add_node(node)
            # autostart runs beside the executor: the node answers (get_state, parameters,
            # /diagnostics) while its configure loads a model.
            starter = threading.Thread(target=autostart, args=(node, lambda: stop.requested), name="autostart")
            starter.start()
            try:
                while rclpy.ok() and not stop.requested and not getattr(node, "finalized", False):
                    executor.spin_once(timeout_sec=0.25)  # returns often enough to see a signal
                if getattr(node, "finalized", False):  # the shutdown transition: let its reply reach the caller
                    end = time.monotonic() + FINALIZED_GRACE_S
                    while rclpy.ok() and time.monotonic() < end:
                        executor.spin_once(timeout_sec=0.05)
            finally:
                starter.join()  # a configure that has begun finishes first; activate is skipped
                executor.shutdown(wait_for_threads=True)  # callbacks in flight (a transition) finish
                if finish is not None:
                    finish(node)
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    exit_now(0)
