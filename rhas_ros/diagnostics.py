"""rhas_node's /diagnostics as ROS tools expect them: diagnostic_updater (ros/diagnostics), from the
node's construction, on a steady clock.

Four statuses, named ``<node's full name>: <task>`` (``diagnostic_updater.use_fqn`` is on, so two
nodes in two namespaces stay apart):

- ``pipeline``: the lifecycle state (a failed configure is an ERROR with its reason), what went
  wrong within the last ``diagnostics_window_s`` (the level recovers after a burst), the camera
  watchdog (active and no image for ``image_timeout_s``: ERROR), and the counters and gauges;
- ``images in``: diagnostic_updater's FrequencyStatus on the frames kept, expected between half
  of ``sample_fps`` and ``sample_fps`` (no frame within ``image_timeout_s``: ERROR);
- ``image stamps``: how old the frames' stamps are on the node's clock (TimeStampStatus's rule:
  older than 5 s or more than 1 s ahead is an ERROR; a bag replayed without use_sim_time shows here);
- ``segments out``: FrequencyStatus on the segment messages, expected up to one per person and
  hop; no message while someone was there to segment is an ERROR, none while nobody was is OK.

The updater's timer runs on the steady clock: under use_sim_time the node's clock stands still
until /clock starts, and monitoring must not go silent then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_updater import (
    DiagnosticTask,
    FrequencyStatus,
    FrequencyStatusParam,
    TimeStampStatus,
    TimeStampStatusParam,
    Updater,
)
from rclpy.clock import Clock, ClockType

from .core.diagnostics import Counters, RecentCounts, pipeline_status

PERIOD_S = 1.0
LEVELS = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)


class SteadyUpdater(Updater):
    """diagnostic_updater.Updater whose timer is on the steady clock (publishes before /clock)."""

    def __init__(self, node, period: float = PERIOD_S):
        super().__init__(node, period)
        self.node_name = node.get_fully_qualified_name()  # use_fqn joins "/" + name into "//name" at the root
        node.destroy_timer(self.timer)
        self.timer = node.create_timer(self.period, self.update, clock=Clock(clock_type=ClockType.STEADY_TIME))


class _FunctionTask(DiagnosticTask):
    def __init__(self, name: str, fn: Callable):
        super().__init__(name)
        self.fn = fn

    def run(self, stat):
        return self.fn(stat)


class _NodeClockStamps(TimeStampStatus):
    """TimeStampStatus measuring stamp age on the node's clock (sim time under use_sim_time), not on
    a clock of its own."""

    def __init__(self, node):
        super().__init__(TimeStampStatusParam(), "image stamps")
        self.node = node

    def tick_ns(self, stamp_ns: int) -> None:
        now = self.node.get_clock().now().nanoseconds
        with self.lock:
            if stamp_ns == 0:
                self.zero_seen = True
                return
            delta = (now - stamp_ns) * 1e-9
            self.max_delta = delta if not self.deltas_valid else max(self.max_delta, delta)
            self.min_delta = delta if not self.deltas_valid else min(self.min_delta, delta)
            self.deltas_valid = True


class NodeDiagnostics:
    """The node's statuses. ``state`` and ``someone_to_segment`` are read from the node when the
    updater runs; the node calls ``image``, ``segment_message`` and ``configure``."""

    def __init__(self, node, counts: Counters, gauges: Callable[[], dict], state: Callable[[], str],
                 someone_to_segment: Callable[[], bool]):  # fmt: skip
        if not node.has_parameter("diagnostic_updater.use_fqn"):
            node.declare_parameter("diagnostic_updater.use_fqn", True)
        self.node, self.counts, self.gauges, self.state = node, counts, gauges, state
        self.someone_to_segment = someone_to_segment
        self.recent = RecentCounts()
        self.image_timeout_s = 5.0
        self._active_since = None  # monotonic time of activation (None: not active)
        self._last_image = None
        self._bounds = {"images": {"min": 0.0, "max": math.inf}, "segments": {"min": 0.0, "max": math.inf}}
        self.images = FrequencyStatus(FrequencyStatusParam(self._bounds["images"], 0.1, 5), "images in")
        self.segments = FrequencyStatus(FrequencyStatusParam(self._bounds["segments"], 0.1, 5), "segments out")
        self.stamps = _NodeClockStamps(node)
        self.updater = SteadyUpdater(node)
        self.updater.setHardwareID("none")
        self.updater.add(_FunctionTask("pipeline", self._pipeline))
        self.updater.add(_FunctionTask("images in", self._images))
        self.updater.add(_FunctionTask("image stamps", self._stamps))
        self.updater.add(_FunctionTask("segments out", self._segments))

    # ------------------------------------------------------------------ from the node
    def configure(self, config) -> None:
        """Expected rates and windows from the resolved parameters (configure, and runtime changes)."""
        s, fps, hop = config.settings, config.sample_fps, config.stream.hop
        self.image_timeout_s = s.image_timeout_s
        self.recent.window_s = s.diagnostics_window_s
        self._bounds["images"].update(min=fps / 2, max=fps)
        persons = s.max_persons if s.segment_all_persons else 1
        self._bounds["segments"].update(min=0.0, max=1.5 * persons * fps / hop + 1.0)  # + closing messages
        self.images.params.window_size = max(2, math.ceil(self.image_timeout_s / PERIOD_S))
        self.segments.params.window_size = max(2, math.ceil(3 * hop / fps / PERIOD_S))
        for f in (self.images, self.segments):
            f.clear()

    def activated(self, active: bool) -> None:
        self._active_since = time.monotonic() if active else None
        self._last_image = None
        for f in (self.images, self.segments):
            f.clear()

    def image(self, stamp_ns: int) -> None:
        """A frame was kept (after subsampling)."""
        self._last_image = time.monotonic()
        self.images.tick()
        self.stamps.tick_ns(stamp_ns)

    def segment_message(self) -> None:
        self.segments.tick()

    # ------------------------------------------------------------------ tasks
    def _pipeline(self, stat):
        counts = Counters(self.counts)  # a copy: callbacks and the worker keep counting
        silence = None
        if self._active_since is not None:
            silence = time.monotonic() - (self._last_image or self._active_since)
        st = pipeline_status(counts, self.recent.update(counts, time.monotonic()), self.gauges(), self.state(),
                             silence, self.image_timeout_s)  # fmt: skip
        stat.summary(LEVELS[st.level], st.message)
        for k, v in st.values.items():
            stat.add(k, v)
        return stat

    def _inactive(self, stat):
        stat.summary(DiagnosticStatus.OK, f"{self.state()}: not processing")
        return stat

    def _images(self, stat):
        return self.images.run(stat) if self._active_since is not None else self._inactive(stat)

    def _stamps(self, stat):
        return self.stamps.run(stat) if self._active_since is not None else self._inactive(stat)

    def _segments(self, stat):
        if self._active_since is None:
            return self._inactive(stat)
        stat = self.segments.run(stat)
        if stat.level == DiagnosticStatus.ERROR and not self.someone_to_segment():
            stat.summary(DiagnosticStatus.OK, "nobody to segment")
        return stat
