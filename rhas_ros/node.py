"""rhas_node: a lifecycle node that segments the actions of the person a text refers to.

Callbacks only subsample by stamp, decode and enqueue (bounded, latest wins, drops counted);
a worker thread runs the pipeline (detect, track, ground, encode, HopaDIFF, stitch) and
publishes. Parameters: config/rhas.yaml; topics and messages: README.md.
"""

from __future__ import annotations

import collections
import difflib
import resource
import signal
import sys
import threading
import time
from dataclasses import fields

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String

from hopadiff import load_checkpoint
from hopadiff.features import load_backbone
from hopadiff.runtime import prepare_for_inference
from rhas_msgs.msg import ActionLabels, ActionSegmentArray, TrackedPersonArray

from . import conversions as conv
from . import qos
from .core.debug_image import current_actions, draw
from .core.detectors import make_detector
from .core.image_codec import ImageDecodeError
from .core.pipeline import RhasPipeline
from .parameters import DESCRIPTIONS, DYNAMIC, Settings, declare_parameters, read_settings, validate

LOGGED_TEXT_CHARS = 120  # what a log line shows of an untrusted string
PERSONS_KEPT = 64  # persons messages kept for matching by stamp
PERSONS_WAIT_S = 0.2  # how long the worker waits for the boxes of a frame


def shown(text: str) -> str:
    """An untrusted string for a log line: escaped (repr) and truncated."""
    return repr(text[:LOGGED_TEXT_CHARS]) + (f"... ({len(text)} chars)" if len(text) > LOGGED_TEXT_CHARS else "")


class RhasNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("rhas_node", **kwargs)
        declare_parameters(self)
        self._warn_unknown_overrides()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.settings = None  # set by configure; None while unconfigured
        self.pipeline = None
        self._subs, self._pubs = [], {}
        self._queue: collections.deque = collections.deque()  # frames only: always <= queue_size
        self._reset_pending = False  # stamps went backwards: the worker drops all buffers first
        self._cv = threading.Condition()
        self._worker: threading.Thread | None = None
        self._running = False
        self._pending_query: str | None = None
        self._persons: collections.OrderedDict[int, object] = collections.OrderedDict()  # stamp ns -> boxes msg
        self._last_stamp_ns: int | None = None
        self._stats = collections.Counter()
        self._last_inference_ms = 0.0
        self._last_latency_ms = 0.0
        self._diag_timer = None
        self._warned: dict[str, float] = {}
        self._buffered_frames = 0
        self._frame = ("", (0, 0))  # frame_id and size of the newest processed image
        self._current: dict[int, str] = {}  # person id -> current actions, for ~/debug_image
        self._last_query: str | None = None
        self._text_logged_at, self._texts_unlogged = -1e9, 0
        self._texts_seen: collections.deque = collections.deque(maxlen=64)  # (publisher gid, sequence number)

    # ------------------------------------------------------------------ parameters
    def _warn_unknown_overrides(self) -> None:
        """A misspelled parameter in a params file or on the command line is otherwise ignored silently."""
        declared = [f.name for f in fields(Settings)]
        for name in sorted(set(self._parameter_overrides) - set(declared) - {"use_sim_time"}):
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.get_logger().warning(f"{name!r} is not a parameter of rhas_node and is ignored{hint}")

    def _on_set_parameters(self, params):
        """Refuse configure-time parameters while configured; validate and apply dynamic ones at once."""
        for p in params:
            if self.settings is None:
                continue  # unconfigured: everything is read (and validated) at configure
            if p.name not in DYNAMIC:
                return SetParametersResult(
                    successful=False,
                    reason=f"{p.name} takes effect at configure: deactivate, cleanup, set it, then configure again",
                )
            reason = validate(p.name, p.value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        if self.settings is not None:
            for p in params:
                setattr(self.settings, p.name, p.value)
            if self.pipeline is not None:
                self.pipeline.apply_settings(self.settings)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.settings = s = read_settings(self)
            self.get_logger().info(
                f"loading checkpoint {s.checkpoint} and {s.backbone} backbone {s.backbone_model or '(paper default)'}"
            )
            self.pipeline, self.labels, self.ckpt_multi = build_pipeline(s, self.get_logger())
        except Exception as e:
            self.get_logger().error(f"configure failed: {e}")
            self.pipeline = self.settings = None
            return TransitionCallbackReturn.FAILURE
        self._pubs = {
            "segments": self.create_lifecycle_publisher(ActionSegmentArray, s.segments_topic, qos.RELIABLE),
            "labels": self.create_lifecycle_publisher(ActionLabels, s.labels_topic, qos.LATCHED),
            "tracks": self.create_lifecycle_publisher(TrackedPersonArray, s.tracks_topic, qos.RELIABLE),
            "debug": self.create_lifecycle_publisher(Image, "~/debug_image", qos.DEBUG_IMAGE),
            "diagnostics": self.create_publisher(DiagnosticArray, "/diagnostics", qos.RELIABLE),
        }
        self.get_logger().info(
            f"configured: {len(self.labels)} classes, W={s.window}, hop={s.hop}, "
            f"{'everyone' if s.segment_all_persons else 'referring'} mode"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        s = self.settings
        image_qos = qos.image_qos(s.image_qos, s.image_qos_depth)
        if s.use_compressed:
            self._subs.append(
                self.create_subscription(CompressedImage, s.image_topic + "/compressed", self._on_compressed, image_qos)
            )
        else:
            self._subs.append(self.create_subscription(Image, s.image_topic, self._on_image, image_qos))
        # Two subscriptions, one topic: the transient-local one receives a text latched before the
        # node started; the volatile one matches a volatile publisher (`ros2 topic pub` by default),
        # which a transient-local subscription never does. A latched publisher reaches both: the
        # copy is recognised by (publisher, sequence number) and dropped.
        self._subs.append(self.create_subscription(String, s.text_topic, self._on_text, qos.LATCHED))
        self._subs.append(self.create_subscription(String, s.text_topic, self._on_text, qos.TEXT_VOLATILE))
        if s.detector == "external":
            self._subs.append(
                self.create_subscription(TrackedPersonArray, s.persons_topic, self._on_persons, qos.RELIABLE)
            )
        self._running = True
        self._worker = threading.Thread(target=self._work, name="rhas_worker", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        ret = super().on_activate(state)
        self.get_logger().info(  # the resolved names (namespace and remappings applied)
            f"active: images on {self._subs[0].topic_name}, text on {self._subs[1].topic_name}, detector {s.detector}"
        )
        self._pubs["labels"].publish(
            ActionLabels(
                header=Header(stamp=self.get_clock().now().to_msg()),
                checkpoint=s.checkpoint,
                multi_label=self.ckpt_multi,
                labels=self.labels,
            )
        )
        return ret

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self.close_segments()  # publishers are still active here
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.settings = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        self.close_segments(wait_acked=2.0)
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def stop(self) -> None:
        """Orderly stop, safe in every state: no new input, worker drained and joined."""
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._stop_worker()

    def _release(self) -> None:
        for name, pub in list(self._pubs.items()):
            if name == "diagnostics":
                self.destroy_publisher(pub)
            else:
                self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        self.pipeline = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _stop_worker(self) -> None:
        with self._cv:
            self._running = False
            self._queue.clear()
            self._cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30)  # at most one inference in flight
            if self._worker.is_alive():
                self.get_logger().error("worker did not stop within 30 s")
            self._worker = None

    # ------------------------------------------------------------------ callbacks (thin)
    def _accept_stamp(self, header) -> bool:
        """Subsample to sample_fps by header stamp; a stamp going backwards resets the buffers.

        Stamps are integer nanoseconds end to end; a nanosec field >= 1e9 is refused (it would
        wrap the seconds of every stamp derived from it)."""
        self._stats["frames_in"] += 1
        if not 0 <= header.stamp.nanosec < 1_000_000_000 or header.stamp.sec < 0:
            self._stats["bad_stamps"] += 1
            self._warn(f"skipping image with invalid stamp sec={header.stamp.sec} nanosec={header.stamp.nanosec}")
            return False
        ns = conv.stamp_to_ns(header.stamp)
        last = self._last_stamp_ns
        if last is not None and ns < last:
            self._stats["stamp_went_backwards"] += 1
            self._warn("image stamp went backwards (bag loop?): resetting buffers", key="backwards")
            self._last_stamp_ns = ns
            with self._cv:
                self._reset_pending = True  # the frames before the jump are obsolete
                self._queue.clear()
            return True
        if last is not None and ns == last:
            self._stats["stamp_repeated"] += 1
            self._warn("images arrive with the stamp of the previous image (is the camera stamping frames?)")
            return False
        if last is not None and ns - last < 1e9 / self.settings.sample_fps:
            self._stats["frames_skipped_fps"] += 1
            return False
        self._last_stamp_ns = ns
        return True

    def _on_image(self, msg: Image) -> None:
        self._on_frame(msg, conv.image_to_rgb, self.settings.image_topic)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._on_frame(msg, conv.compressed_to_rgb, self.settings.image_topic + "/compressed")

    def _on_frame(self, msg, decode, topic: str) -> None:
        """Subsample by stamp, decode, enqueue: nothing heavier runs in a callback, and nothing
        one message does can end the executor."""
        try:
            if not self._accept_stamp(msg.header):
                return
            try:
                rgb = decode(msg, self.settings.max_image_pixels)
            except (ImageDecodeError, ValueError) as e:
                self._stats["decode_errors"] += 1
                self._warn(f"skipping image on {topic}: {e}")
                return
            self._enqueue((rgb, msg.header, time.monotonic()))
        except Exception as e:  # never let one message end rclpy.spin
            self._callback_failed(f"image on {topic}", e)

    def _callback_failed(self, what: str, e: Exception) -> None:
        self._stats["callback_errors"] += 1
        self._warn(f"{what} could not be handled: {type(e).__name__}: {shown(str(e))}", key=f"cb:{what}")

    def _warn(self, message: str, key: str | None = None) -> None:
        """Warn once per distinct problem every 5 s (a broken camera or a flood would fill the log)."""
        key = key or message
        now = time.monotonic()
        if now - self._warned.get(key, -1e9) >= 5.0:
            if len(self._warned) > 100:
                self._warned.clear()
            self._warned[key] = now
            self.get_logger().warning(message)

    def _on_text(self, msg: String, info) -> None:
        try:
            gid = info.get("publisher_gid") or {}
            key = (bytes(gid.get("data", b"")), info.get("publication_sequence_number"))
            if key[1] is not None:
                if key in self._texts_seen:
                    return  # the same message through the other text subscription
                self._texts_seen.append(key)
            text = msg.data
            limit = self.settings.max_text_chars
            if len(text) > limit:
                self._warn(f"referring text of {len(text)} characters truncated to {limit}", key="text-long")
                text = text[:limit]
            if text != self._last_query:  # a repeated text (a latched republisher) is logged once
                self._last_query = text
                now = time.monotonic()
                if now - self._text_logged_at >= 1.0:  # a flood of changing texts: one line a second
                    more = f" ({self._texts_unlogged} more texts since the last line)" if self._texts_unlogged else ""
                    self.get_logger().info(
                        (f"referring text: {shown(text)}" if text else "referring text cleared") + more
                    )
                    self._text_logged_at, self._texts_unlogged = now, 0
                else:
                    self._texts_unlogged += 1
            with self._cv:
                self._pending_query = text
                self._cv.notify_all()
        except Exception as e:
            self._callback_failed("referring text", e)

    def _on_persons(self, msg: TrackedPersonArray) -> None:
        """Keep the latest boxes by stamp; the worker takes the ones stamped like its frame."""
        try:
            with self._cv:
                self._persons[conv.stamp_to_ns(msg.header.stamp)] = msg
                while len(self._persons) > PERSONS_KEPT:
                    self._persons.popitem(last=False)
                self._cv.notify_all()
        except Exception as e:
            self._callback_failed("persons", e)

    def _persons_for(self, ns: int):
        """The persons message stamped like the frame, else the nearest within
        persons_stamp_tolerance (waiting briefly for one still in flight), else None."""
        tol = round(self.settings.persons_stamp_tolerance * 1e9)

        def match():
            if ns in self._persons:
                return self._persons[ns]
            near = min(self._persons, key=lambda t: abs(t - ns), default=None)
            return self._persons[near] if near is not None and abs(near - ns) <= tol else None

        with self._cv:
            # Boxes for this frame may still be on their way (another topic): wait a little unless
            # newer boxes already arrived.
            self._cv.wait_for(
                lambda: match() is not None or any(t > ns + tol for t in self._persons) or not self._running,
                PERSONS_WAIT_S,
            )
            return match()

    def _enqueue(self, item) -> None:
        with self._cv:
            while len(self._queue) >= self.settings.queue_size:
                self._queue.popleft()  # latest wins
                self._stats["dropped"] += 1
            self._queue.append(item)
            self._cv.notify_all()

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(
                    lambda: not self._running or self._queue or self._pending_query is not None or self._reset_pending,
                    0.5,
                )
                if not self._running:
                    return
                query, self._pending_query = self._pending_query, None
                reset, self._reset_pending = self._reset_pending, False
                item = self._queue.popleft() if self._queue else None
            try:
                if reset:
                    self._publish_outputs(self.pipeline.reset())
                if query is not None:
                    self._publish_outputs(self.pipeline.set_query(query)[1])
                if item is not None:
                    self._process(*item)
            except Exception as e:
                self._stats["worker_errors"] += 1
                self.get_logger().error(f"frame processing failed: {type(e).__name__}: {e}", throttle_duration_sec=5.0)

    def _process(self, rgb, header, received: float) -> None:
        ns = conv.stamp_to_ns(header.stamp)
        persons = None
        if self.settings.detector == "external":  # the boxes of this frame from the upstream detector
            msg = self._persons_for(ns)
            if msg is None:
                self._stats["frames_without_persons"] += 1
                self._warn(f"no persons message within {self.settings.persons_stamp_tolerance} s of an image stamp")
            persons = conv.persons_from_msg(msg) if msg is not None else conv.NO_PERSONS
        result = self.pipeline.process(rgb, ns, persons)
        self._stats["frames_processed"] += 1
        self._buffered_frames = self.pipeline.memory_frames()  # read by the diagnostics timer (another thread)
        size = (rgb.shape[1], rgb.shape[0])
        self._frame = (header.frame_id, size)
        if not self._pubs:
            return
        self._pubs["tracks"].publish(conv.tracked_persons(result, self.pipeline.query, header.frame_id, size))
        self._publish_outputs(result.outputs)
        current_actions(result, self.labels, self._current)
        if result.inference_ms is not None:
            self._last_inference_ms = result.inference_ms
        if result.outputs:
            self._last_latency_ms = (time.monotonic() - received) * 1e3
        debug = self._pubs["debug"]
        if debug.get_subscription_count() > 0:
            img = draw(rgb, result, self.labels, self._current)
            data, step = conv.encode_bgr(img)
            debug.publish(
                Image(header=header, height=img.shape[0], width=img.shape[1], encoding="bgr8", step=step, data=data)
            )

    def _publish_outputs(self, outputs) -> None:
        """Segment messages; the header stamp is the newest processed frame's (closing messages too)."""
        if not outputs or "segments" not in self._pubs:
            return
        frame_id, size = self._frame
        ns = self.pipeline.segmenter.last_stamp_ns
        for out in outputs:
            self._pubs["segments"].publish(conv.segment_array(out, self.labels, frame_id, ns, size))
            self._stats["segment_msgs"] += 1
            self._stats["segments_closed"] += sum(s.status == 1 for s in out.segments)

    def close_segments(self, wait_acked: float = 0.0) -> None:
        """Deactivate/shutdown: every open segment is published FINAL (worker already stopped).
        ``wait_acked``: seconds to wait for reliable subscribers to acknowledge them (before the
        node is destroyed, which would drop what is still in flight)."""
        if self.pipeline is not None:
            try:
                outputs = self.pipeline.close_all()
                self._publish_outputs(outputs)
                pub = self._pubs.get("segments")
                if outputs and wait_acked > 0 and pub is not None:
                    pub.wait_for_all_acked(Duration(seconds=wait_acked))
            except Exception as e:
                self.get_logger().error(f"closing open segments failed: {type(e).__name__}: {e}")

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        st = dict(self._stats)
        values = {
            "frames_received": st.get("frames_in", 0),
            "frames_skipped_by_sample_fps": st.get("frames_skipped_fps", 0),
            "frames_processed": st.get("frames_processed", 0),
            "frames_dropped_queue_full": st.get("dropped", 0),
            "frames_without_persons": st.get("frames_without_persons", 0),
            "decode_errors": st.get("decode_errors", 0),
            "callback_errors": st.get("callback_errors", 0),
            "worker_errors": st.get("worker_errors", 0),
            "invalid_stamps": st.get("bad_stamps", 0),
            "stamps_repeated": st.get("stamp_repeated", 0),
            "stamps_went_backwards": st.get("stamp_went_backwards", 0),
            "boxes_dropped_over_max_boxes": self.pipeline.dropped_boxes if self.pipeline is not None else 0,
            "segment_messages": st.get("segment_msgs", 0),
            "segments_closed": st.get("segments_closed", 0),
            "queue_length": len(self._queue),
            "buffered_frames": self._buffered_frames,
            "last_inference_ms": round(self._last_inference_ms, 1),
            "last_latency_ms": round(self._last_latency_ms, 1),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        if torch.cuda.is_available():
            values["cuda_allocated_mib"] = round(torch.cuda.memory_allocated() / 2**20, 1)
        problems = [
            ("frames dropped (queue full)", st.get("dropped", 0)),
            ("images rejected", st.get("decode_errors", 0) + st.get("bad_stamps", 0)),
            ("images with repeated stamps", st.get("stamp_repeated", 0)),
            ("frames without a persons message", st.get("frames_without_persons", 0)),
            ("stamps went backwards", st.get("stamp_went_backwards", 0)),
            ("callback or worker errors", st.get("callback_errors", 0) + st.get("worker_errors", 0)),
        ]
        seen = [f"{name}: {n}" for name, n in problems if n]
        # DiagnosticStatus.OK is b"\x00", which is truthy: compare levels, never test them for truth.
        level = DiagnosticStatus.WARN if seen else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: pipeline",
            hardware_id="rhas",
            message="; ".join(seen) if seen else "ok",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        pub = self._pubs.get("diagnostics")
        if pub is not None:
            pub.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status]))


def build_pipeline(s, logger=None):
    """Load checkpoint, backbone and detector (all checks happen here, before activation)."""
    if s.torch_threads > 0:
        torch.set_num_threads(s.torch_threads)
    # Everything cheap first: a wrong checkpoint or backbone fails in well under a second,
    # before anything is loaded from disk or the hub.
    model, cfg, labels, _ = load_checkpoint(s.checkpoint)  # read once; the backbone's size is checked below
    if cfg.data.backbone and cfg.data.backbone != s.backbone:
        raise ValueError(
            f"{s.checkpoint} was trained on {cfg.data.backbone} features; parameter backbone is {s.backbone!r}"
        )
    backbone = load_backbone(s.backbone, s.backbone_model or None, s.device, s.precision, s.local_files_only)
    if cfg.model.feature_dim != backbone.feature_dim:
        raise ValueError(
            f"{s.checkpoint}: trained on {cfg.model.feature_dim}-dim features, "
            f"the backbone gives {backbone.feature_dim}"
        )
    if cfg.data.holistic_text and not backbone.conditions_on_text:
        raise ValueError(
            f"{s.checkpoint} was trained on holistic features conditioned on the referring text, "
            f"which the {s.backbone} backbone cannot compute (use blip2)"
        )
    # Window, hop and rate default to what the checkpoint was trained with; a different value is
    # allowed (the model is convolutional in time) but worth a warning.
    for name, trained in (("window", cfg.data.window), ("hop", cfg.data.hop), ("sample_fps", cfg.data.sample_fps)):
        value = getattr(s, name)
        if not value:
            setattr(s, name, trained)
        elif value != trained and logger is not None:
            logger.warning(f"parameter {name}={value} differs from the checkpoint's training value {trained}")
    if s.hop > s.window:
        raise ValueError(f"parameter hop={s.hop} is larger than window={s.window}")
    model = prepare_for_inference(model, s.device, s.precision, compile=s.compile_model)
    if s.compile_model:  # compile now, not on the first live window (referring mode batches one person)
        model.warm_up(s.window, (1, 2) if s.segment_all_persons else (1,))
    detector = make_detector(s.detector, s.detector_model, str(backbone.device), s.local_files_only, s.hog_upscale)
    pipeline = RhasPipeline(model, labels, backbone, detector, s, holistic_text=cfg.data.holistic_text)
    return pipeline, labels, cfg.model.multi_label


USAGE = """usage: rhas_node [--ros-args -p NAME:=VALUE ... --params-file FILE -r FROM:=TO ...]

Lifecycle node: segments the actions of the person a referring text names (see README.md).
Start it with `ros2 launch rhas_ros rhas.launch.py checkpoint:=...`, or directly with
`rhas_node --ros-args --params-file config/rhas.yaml -p checkpoint:=best.pt -p autostart:=true`.

parameters (config/rhas.yaml has them all with their defaults):
"""


def main(args=None) -> None:
    argv = sys.argv[1:] if args is None else list(args)
    own = argv[: argv.index("--ros-args")] if "--ros-args" in argv else argv
    if "-h" in own or "--help" in own:
        width = max(map(len, DESCRIPTIONS))
        print(USAGE + "\n".join(f"  {k:<{width}}  {v}" for k, v in DESCRIPTIONS.items()))
        return
    # rclpy's own SIGINT/SIGTERM handler invalidates the context at once, under a worker that may
    # be publishing and an executor that may be taking a message (both failed that way). Here a
    # signal ends the spin loop between two spins (or interrupts start-up and autostart's
    # configure), and the context is shut down only after the node is stopped and destroyed.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
            try:
                node = RhasNode()
            except (rclpy.exceptions.ParameterException, ValueError) as e:
                print(f"rhas_node: error: {e}", file=sys.stderr)
                sys.exit(2)
            try:
                if node.get_parameter("autostart").value:
                    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                        node.get_logger().fatal("autostart: configure failed (see above); staying unconfigured")
                    elif node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
                        node.get_logger().fatal("autostart: activate failed")
                executor = SingleThreadedExecutor()
                executor.add_node(node)
                _STOP.spinning = True
                while rclpy.ok() and not _STOP.requested:
                    executor.spin_once(timeout_sec=0.25)  # returns often enough to see a signal
            finally:
                # In order, whatever the state: stop intake, stop and join the worker, then destroy
                # the node; the context goes last (leaving the with block).
                node.stop()
                node.close_segments(wait_acked=2.0)  # SIGINT/SIGTERM: open segments end FINAL (when active)
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


class _Stop:
    spinning = False  # in the spin loop: finish the current spin, then stop
    requested = False


_STOP = _Stop()


def _on_signal(signum, frame) -> None:
    if _STOP.spinning:
        _STOP.requested = True
    else:  # start-up or autostart's configure: nothing to finish
        raise KeyboardInterrupt


if __name__ == "__main__":
    main()
