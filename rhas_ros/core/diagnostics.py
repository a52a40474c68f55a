"""The node's health as /diagnostics shows it, computed from its counters (free of ROS).

``Counters`` are the events the node counts; ``pipeline_status`` turns them (and the gauges the
node reads at the time) into a level, a one-line message and the key/value pairs published.
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
    "segment_messages": "segment_msgs",
    "segments_closed": "segments_closed",
}
# What makes the status WARN: a name shown in the message, and the counters it adds up.
PROBLEMS = (
    ("frames dropped (queue full)", ("dropped",)),
    ("images rejected", ("decode_errors", "bad_stamps")),
    ("images with repeated stamps", ("stamp_repeated",)),
    ("frames without a persons message", ("frames_without_persons",)),
    ("stamps went backwards", ("stamp_went_backwards",)),
    ("stamps jumped forward", ("stamp_jumped_forward",)),
    ("callback or worker errors", ("callback_errors", "worker_errors")),
)


class Counters(collections.Counter):
    """Event counts by name (the values of ``COUNTED``); incremented from the callbacks and the worker."""


@dataclass(frozen=True)
class Status:
    level: int
    message: str
    values: dict[str, str]


def pipeline_status(counts: Counters, gauges: dict) -> Status:
    """``gauges``: values read now (queue length, buffered frames, last inference ms, ...)."""
    values = {key: counts.get(name, 0) for key, name in COUNTED.items()}
    values.update(gauges)
    values["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    seen = [f"{what}: {n}" for what, names in PROBLEMS if (n := sum(counts.get(c, 0) for c in names))]
    return Status(WARN if seen else OK, "; ".join(seen) if seen else "ok", {k: str(v) for k, v in values.items()})
