"""The node's health as /diagnostics shows it, computed from its counters (free of ROS).

``Counters`` are the events the node counts since it started (published as they are: monitoring
tools plot them). The level is decided on what happened *recently* (``RecentCounts``: the last
``window_s`` seconds), so it recovers after a burst: one dropped frame or one bag loop must not
leave the node at WARN for good. ``pipeline_status`` adds the node's lifecycle state (a failed
configure is an ERROR with its reason) and the camera watchdog (active, and no image for
``image_timeout_s``: ERROR, whatever else looks fine).
"""

from __future__ import annotations

import collections
import resource
from dataclasses import dataclass

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels

# Published key -> the counter behind it (one name each, in the order shown).
COUNTED = {
    "frames_received": "frames_in",
    "frames_skipped_by_sample_fps": "frames_skipped_fps",
    "frames_processed": "frames_processed",
    "frames_dropped_queue_full": "dropped",
    "frames_without_persons": "frames_without_persons",
    "decode_errors": "decode_errors",
    "callback_errors": "callback_errors",
    "worker_errors": "worker_errors",
    "invalid_stamps": "bad_stamps",
    "stamps_repeated": "stamp_repeated",
    "stamps_went_backwards": "stamp_went_backwards",
    "stamps_jumped_forward": "stamp_jumped_forward",
    "persons_rejected": "persons_rejected",
    "detections_not_person": "detections_not_person",
    "image_qos_incompatible": "image_qos_incompatible",
    "segment_messages": "segment_msgs",
    "segments_closed": "segments_closed",
}
# What makes the status WARN when it happened within the window: a name shown in the message, and
# the counters it adds up.
PROBLEMS = (
    ("frames dropped (queue full)", ("dropped",)),
    ("images rejected", ("decode_errors", "bad_stamps")),
    ("images with repeated stamps", ("stamp_repeated",)),
    ("frames without a persons message", ("frames_without_persons",)),
    ("person boxes rejected", ("persons_rejected",)),
    ("image publishers with an incompatible QoS", ("image_qos_incompatible",)),
    ("stamps went backwards", ("stamp_went_backwards",)),
    ("stamps jumped forward", ("stamp_jumped_forward",)),
    ("callback or worker errors", ("callback_errors", "worker_errors")),
)
ERRORS = PROBLEMS[-1][0]  # its message names the last error (the gauge ``last_error``)


class Counters(collections.Counter):
    """Event counts by name (the values of ``COUNTED``); incremented from the callbacks and the worker."""


class RecentCounts:
    """How much each counter grew over the last ``window_s`` seconds (snapshots at each update)."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self._snaps: collections.deque[tuple[float, dict]] = collections.deque()

    def update(self, counts: Counters, now: float) -> dict[str, int]:
        self._snaps.append((now, dict(counts)))
        while len(self._snaps) > 1 and now - self._snaps[1][0] >= self.window_s:
            self._snaps.popleft()  # the base: the newest snapshot at least window_s old
        t0, base = self._snaps[0]
        if now - t0 < self.window_s:
            base = {}  # nothing that old yet: everything since the start is recent
        return {k: v - base.get(k, 0) for k, v in counts.items()}


@dataclass(frozen=True)
class Status:
    level: int
    message: str
    values: dict[str, str]


def pipeline_status(counts: Counters, recent: dict[str, int], gauges: dict, state: str = "active",
                    image_silence_s: float | None = None, image_timeout_s: float = 5.0) -> Status:  # fmt: skip
    """``recent``: the counters' growth over the window (``RecentCounts``); ``gauges``: values read
    now (queue length, buffered frames, ...); ``state``: the lifecycle state, or "configure failed:
    <reason>"; ``image_silence_s``: seconds since the last image, or since activation when none came."""
    values = {key: counts.get(name, 0) for key, name in COUNTED.items()}
    values.update(gauges)
    values["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    values["state"] = state
    strings = {k: str(v) for k, v in values.items()}
    if state.startswith("configure failed"):
        return Status(ERROR, state, strings)
    if state != "active":
        return Status(WARN, f"{state}: not processing", strings)
    if image_silence_s is not None and image_silence_s > image_timeout_s:
        message = f"no image for {image_silence_s:.0f} s (is the camera publishing, with a compatible QoS?)"
        return Status(ERROR, message, strings)
    seen = [f"{what}: {n}" for what, names in PROBLEMS if (n := sum(recent.get(c, 0) for c in names))]
    if seen and seen[-1].startswith(ERRORS) and gauges.get("last_error"):  # what a bug report needs
        seen[-1] += f" (last: {gauges['last_error']})"
    return Status(WARN if seen else OK, "; ".join(seen) if seen else "ok", strings)
