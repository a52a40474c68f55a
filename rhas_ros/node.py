"""rhas_node: a lifecycle node that segments the actions of the person a text refers to.

The node only wires ROS to the ROS-free core: callbacks turn messages into arrays and hand them
to the worker through rhas_ros.core.intake (stamps, the bounded latest-wins queue, texts, boxes
by stamp); a worker thread runs rhas_ros.core.pipeline (detect, track, ground, encode, HopaDIFF,
stitch) and publishes; /diagnostics comes from rhas_ros.core.diagnostics. configure loads and
resolves everything (``RhasPipeline.from_checkpoint``); cleanup undoes it; activate starts
intake and the worker; deactivate stops them and closes every open segment. Parameters:
config/rhas.yaml; topics and messages: README.md.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from . import conversions as conv
from . import lifecycle
from .core.diagnostics import Counters
from .core.intake import Inbox, TextGate, Throttle, mentioned, shown
from .core.persons import ExternalIds, PersonsInput
from .core.pipeline import RhasPipeline
from .core.resolve import NodeConfig
from .core.settings import DESCRIPTIONS as SETTINGS
from .core.settings import DYNAMIC
from .diagnostics import NodeDiagnostics
from .hri import hri_msgs_missing
from .inputs import Inputs
from .outputs import Outputs
from .parameters import declare_parameters, help_text, read_settings, unknown_overrides
from .session import FrameGate, Messages, Session


class RhasNode(LifecycleNode):
    """Threads (rhas_ros.lifecycle.run spins a multi-threaded executor): the lifecycle services are
    reentrant, so ``get_state`` and the parameter services answer while configure loads a model;
    ``_serial`` keeps the quick transitions and the default group's callbacks (subscriptions,
    timers, parameters) apart; configure holds it only to install what it loaded."""

    def __init__(self, **kwargs):
        # LifecycleNode.__init__ is these two calls without the mixin's callback_group (rclpy 10)
        Node.__init__(self, "rhas_node", **kwargs)
        LifecycleNodeMixin.__init__(self, callback_group=ReentrantCallbackGroup())
        self._serial = threading.RLock()
        declare_parameters(self)
        for warning in unknown_overrides(self):
            self.get_logger().warning(warning)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # configure / cleanup
        self._pipeline: RhasPipeline | None = None
        self._session: Session | None = None  # the pipeline's messages (rhas_ros.session)
        self._config: NodeConfig | None = None  # the newest accepted configuration (intake reads it)
        self._out: Outputs | None = None
        # activate / deactivate
        self._in: Inputs | None = None
        self._worker: threading.Thread | None = None
        # what the callbacks and the worker share (rhas_ros.core.intake, .diagnostics)
        self._counts = Counters()
        self._inbox = Inbox(self._counts)
        self._frames = FrameGate(self._counts, self._warn)
        self._texts = TextGate()
        # What the node was told outlives every transition that keeps the process: the active
        # query, and where track ids come from (never reused while the process runs).
        self._query = ""
        self._track_ids = itertools.count(1)
        self._external = ExternalIds()  # upstream ids (Detection2D.id, ROS4HRI body ids) <-> integers
        self.finalized = False  # shutdown transition done: the process exits (rhas_ros.lifecycle)
        self._state = "unconfigured"  # or inactive / active / finalized / "configure failed: <reason>"
        self._someone_to_segment = False  # the newest frame had a person to segment (target / a track)
        self._diag = NodeDiagnostics(self, self._counts, self._diagnostic_gauges, lambda: self._state,
                                     lambda: self._someone_to_segment)  # fmt: skip
        self._throttle = Throttle()
        self._gauges = {"last_frame_ms": 0.0, "last_inference_ms": 0.0, "last_latency_ms": 0.0}

    @property
    def config(self) -> NodeConfig | None:
        """The configuration in force (None while unconfigured)."""
        return self._config

    @property
    def pipeline(self) -> RhasPipeline | None:
        return self._pipeline

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        """Unconfigured: everything is read at configure. Configured: a dynamic change is resolved the
        way configure resolves it and applied from the next frame; anything refused changes nothing."""
        params = [p for p in params if p.name in SETTINGS]  # not QoS overrides, diagnostic_updater's, use_sim_time
        with self._serial:
            return self._set_parameters(params)

    def _set_parameters(self, params) -> SetParametersResult:
        if params and self._state.startswith("configuring"):
            return SetParametersResult(successful=False, reason="configure is running (it read the parameters "
                                       "when it began): set it once the node is configured")  # fmt: skip
        if self._pipeline is None or not params:
            return SetParametersResult(successful=True)
        fixed = [p.name for p in params if p.name not in DYNAMIC]
        if fixed:
            return SetParametersResult(successful=False, reason=f"{fixed[0]} takes effect at configure: deactivate, "
                                       "cleanup, set it, then configure again")  # fmt: skip
        try:
            config = self._pipeline.resolve(replace(self._config.settings, **{p.name: p.value for p in params}))
        except (ValueError, TypeError) as e:
            return SetParametersResult(successful=False, reason=str(e))
        for message in set(config.warnings) - set(self._config.warnings):
            self.get_logger().warning(message)
        self._config = config
        self._diag.configure(config)
        if self._worker is not None:
            self._inbox.put_config(config)  # the worker applies it between two frames
        else:
            self._pipeline.apply(config)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Loads without ``_serial`` (get_state, parameters and /diagnostics answer meanwhile, the
        latter saying what is loading); installs what it loaded with it."""
        with self._serial:
            s = read_settings(self)
            loading = (
                f"loading checkpoint {s.checkpoint} and {s.backbone} backbone {s.backbone_model or '(paper default)'}"
            )
            self._state = f"configuring: {loading}"
        self.get_logger().info(loading)
        try:
            if s.detector == "external" and s.external_type == "hri" and (missing := hri_msgs_missing()):
                raise ValueError(missing)  # an optional dependency, checked before anything loads
            pipeline = RhasPipeline.from_checkpoint(s, self.get_logger().warning, track_ids=self._track_ids)
            pipeline.set_query(self._query)  # the query given before a cleanup holds after it (a newer one is queued)
        except Exception as e:  # every reason configure can fail, named; the node stays unconfigured
            self._state = f"configure failed: {e}"
            self.get_logger().error(self._state)
            return TransitionCallbackReturn.FAILURE
        with self._serial:
            return self._configured(pipeline, s)

    def _configured(self, pipeline: RhasPipeline, s) -> TransitionCallbackReturn:
        self._pipeline = pipeline
        self._config = c = self._pipeline.config
        self._session = Session(self._pipeline, self._counts, self._warn, self._external)
        self._out = Outputs(self, s)
        self._diag.configure(c)
        self._state = "inactive"
        self.get_logger().info(f"configured: {len(c.trained.labels)} classes, W={c.stream.window}, "
                               f"hop={c.stream.hop}, {'referring' if c.referring else 'everyone'} mode")  # fmt: skip
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._serial:
            self._release()
            self._state = "unconfigured"
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._serial:
            return self._activate(state)

    def _activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self._config.settings
        # New subscriptions receive a latched text again: it is applied again, not dropped as the
        # other text subscription's copy.
        self._texts.new_subscriptions()
        self._in = Inputs(self, s)
        self._inbox.start()
        self._worker = threading.Thread(target=self._work, name="rhas_worker", daemon=True)
        self._worker.start()
        self._diag.activated(True)
        self._state = "active"
        ret = super().on_activate(state)
        self.get_logger().info(  # the resolved names (namespace and remappings applied)
            f"active: images on {self._in.image_topic}, text on {self._in.text_topic}, detector {s.detector}"
            + (f" ({s.external_type})" if s.detector == "external" else "")
            + (f", referring text {mentioned(self._query, s.log_referring_text)} (kept)" if self._query else "")
        )
        self._out.labels_pub.publish(self._session.labels_msg(self.get_clock().now().to_msg()))
        return ret

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        with self._serial:
            self.stop()
            self.close_segments()  # publishers are still active here
            self._diag.activated(False)
            self._state = "inactive"
            return super().on_deactivate(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """finalized means done: open segments closed, everything released, and the process exits
        (rhas_ros.lifecycle.run), so a supervisor (launch's respawn, systemd) sees it end."""
        with self._serial:
            self.stop()
            self.close_segments(wait_acked=2.0)
            self._release()
            self._diag.activated(False)
            self._state = "finalized"
            self.finalized = True
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Orderly stop, safe in every state: no new input, worker drained and joined."""
        if self._in is not None:
            self._in.destroy()
            self._in = None
        self._inbox.close()
        if self._worker is not None:
            self._worker.join(timeout=30)  # at most one inference in flight
            if self._worker.is_alive():
                self.get_logger().error("worker did not stop within 30 s")
            self._worker = None

    def _release(self) -> None:
        """configure's twin: publishers and the pipeline."""
        if self._out is not None:
            self._out.destroy()
        self._out, self._pipeline, self._session, self._config = None, None, None, None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ callbacks (thin)
    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Subsample by stamp, decode, enqueue (rhas_ros.session.FrameGate): nothing heavier runs in
        a callback, and nothing one message does can end the executor."""
        with self._serial:
            self._take_image(msg)

    def _take_image(self, msg: Image | CompressedImage) -> None:
        try:
            admitted = self._frames.admit(msg, self._config)
            if admitted is None:
                return
            rgb, restart = admitted  # restart: the clock jumped, the stream restarts with this frame
            self._diag.image(conv.stamp_to_ns(msg.header.stamp))
            s = self._config.settings
            self._inbox.put_frame(
                (rgb, msg.header, time.monotonic()), s.queue_size, restart, drop=s.queue_policy == "latest"
            )
        except Exception as e:  # never let one message end rclpy.spin
            self._callback_failed("compressed image" if isinstance(msg, CompressedImage) else "image", e)

    def _on_text(self, msg: String, info) -> None:
        with self._serial:
            self._take_text(msg, info)

    def _take_text(self, msg: String, info) -> None:
        try:
            gid = info.get("publisher_gid") or {}
            seq = info.get("publication_sequence_number")
            s = self._config.settings
            event = self._texts.receive(msg.data, bytes(gid.get("data", b"")), seq, s.max_text_chars,
                                        s.log_referring_text)  # fmt: skip
            if event is None:
                return  # the same message through the other text subscription
            if event.truncated:
                self._warn(f"referring text of {len(msg.data)} characters truncated to {s.max_text_chars}", "text-long")
            if event.log:
                self.get_logger().info(event.log)
            if event.debug:
                self.get_logger().debug(event.debug)
            self._query = event.text
            self._inbox.put_query(event.text)
        except Exception as e:
            self._callback_failed("referring text", e)

    def _on_persons(self, stamp_ns: int, persons: PersonsInput, merge: bool = False) -> None:
        """Upstream boxes (rhas_ros.inputs), kept by stamp (the inbox's lock): the worker takes its frame's."""
        try:
            self._inbox.put_persons(stamp_ns, persons, merge)
        except Exception as e:
            self._callback_failed("persons", e)

    def _on_bodies(self, ids: list[str]) -> None:
        """The ROS4HRI bodies tracked now: each gets its actions topic (rhas_ros.outputs)."""
        with self._serial:
            if self._out is not None:
                self._out.track_bodies(ids)

    def _callback_failed(self, what: str, e: Exception) -> None:
        self._counts["callback_errors"] += 1
        self._gauges["last_error"] = f"{what}: {type(e).__name__}: {shown(str(e))}"  # /diagnostics names it
        self._warn(f"{what} could not be handled: {type(e).__name__}: {shown(str(e))}", key=f"cb:{what}")

    def _warn(self, message: str, key: str | None = None) -> None:
        if self._throttle.ready(key or message):
            self.get_logger().warning(message)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        pipe, session = self._pipeline, self._session
        while (work := self._inbox.take()) is not None:
            try:
                if work.config is not None:
                    pipe.apply(work.config)
                if work.query is not None:
                    self._publish(session.query(work.query))
                if work.restart:
                    self._publish(session.restart())  # closing messages headed by the last frame before the jump
                if work.frame is not None:
                    self._process(session, *work.frame)
            except Exception as e:
                self._counts["worker_errors"] += 1
                ours = [
                    f
                    for f in traceback.extract_tb(e.__traceback__)
                    if "rhas_ros" in f.filename or "hopadiff" in f.filename
                ] or traceback.extract_tb(e.__traceback__)  # the line a bug report needs
                where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}"
                self._gauges["last_error"] = f"frame processing: {type(e).__name__}: {shown(str(e))} ({where})"
                self.get_logger().error(f"frame processing failed: {type(e).__name__}: {e} ({ours[-1].filename}:"
                                        f"{ours[-1].lineno})", throttle_duration_sec=5.0)  # fmt: skip

    def _process(self, session: Session, rgb, header, received: float) -> None:
        started = time.monotonic()
        upstream = None
        s = self._pipeline.config.settings
        if s.detector == "external":  # the boxes of this frame from the upstream detector
            upstream = self._inbox.persons_for(conv.stamp_to_ns(header.stamp), s.persons_stamp_tolerance)
        msgs, result = session.frame(rgb, header, upstream, debug=self._out.debug.get_subscription_count() > 0)
        self._publish(msgs)
        self._someone_to_segment = (
            (result.target_id is not None) if self._pipeline.referring else any(t.seen for t in result.tracks)
        )
        if result.inference_ms is not None:
            self._gauges["last_inference_ms"] = round(result.inference_ms, 1)
        now = time.monotonic()
        self._gauges["last_frame_ms"] = round((now - started) * 1e3, 1)  # the worker's time for this frame
        if result.outputs:
            self._gauges["last_latency_ms"] = round((now - received) * 1e3, 1)

    def _publish(self, msgs: Messages) -> None:
        self._out.publish(msgs)
        for _ in msgs.segments:
            self._diag.segment_message()

    def close_segments(self, wait_acked: float = 0.0) -> None:
        """Deactivate/shutdown: every open segment is published FINAL (worker already stopped), and
        what was observed of the persons (tracks, appearance, buffered features) is forgotten; the
        query and the id sources stay. ``wait_acked``: seconds to wait for reliable subscribers to
        acknowledge the closing messages (before the node is destroyed, which would drop them)."""
        if self._session is None:
            return
        try:
            msgs = self._session.close()
            self._publish(msgs)
            if msgs.segments and wait_acked > 0:
                self._out.segments.wait_for_all_acked(Duration(seconds=wait_acked))
        except Exception as e:
            self.get_logger().error(f"closing open segments failed: {type(e).__name__}: {e}")

    # ------------------------------------------------------------------ diagnostics
    def _diagnostic_gauges(self) -> dict:
        """Values read when /diagnostics is published (rhas_ros.diagnostics)."""
        with self._serial:
            return self._read_gauges()

    def _read_gauges(self) -> dict:
        gauges = {
            "boxes_dropped": self._pipeline.dropped_boxes if self._pipeline is not None else 0,
            "queue_length": len(self._inbox),
            **self._gauges,
            "buffered_frames": self._pipeline.memory_frames() if self._pipeline is not None else 0,
        }
        searched = getattr(self._pipeline.detector, "input_size", None) if self._pipeline is not None else None
        if searched is not None:  # the image the detector searched last (hog: shrunk to hog_max_side, upscaled)
            gauges["detector_input_px"] = f"{searched[0]}x{searched[1]}"
        if torch.cuda.is_available():
            gauges["cuda_allocated_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        return gauges


def main(args=None) -> None:
    argv = sys.argv[1:] if args is None else list(args)
    own = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    if "-h" in own or "--help" in own:
        print(help_text())
        return

    def finish(node: RhasNode) -> None:  # SIGINT/SIGTERM: open segments end FINAL (when active)
        node.stop()
        node.close_segments(wait_acked=2.0)

    lifecycle.run(RhasNode, args, finish, name="rhas_node")


if __name__ == "__main__":
    main()
