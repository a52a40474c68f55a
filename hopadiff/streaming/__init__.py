"""Streaming segmentation, shared by the ROS node and ``hopadiff-eval --streaming``.

config.py     StreamConfig: the resolved streaming settings (frozen)
activity.py   ActivityRule: probabilities -> active actions (smoothing, threshold)
stitcher.py   SegmentStitcher: overlapping windows -> segments with ids, revisions, status
segmenter.py  Segmenter: per-person buffers, window schedule, inference; stream_sequence
"""

from .activity import ActivityRule, smooth_time
from .config import StreamConfig
from .segmenter import Segmenter, WindowOutput, stream_sequence
from .stitcher import FINAL, ONGOING, Segment, SegmentStatus, SegmentStitcher, find_runs

__all__ = [
    "FINAL",
    "ONGOING",
    "ActivityRule",
    "Segment",
    "SegmentStatus",
    "SegmentStitcher",
    "Segmenter",
    "StreamConfig",
    "WindowOutput",
    "find_runs",
    "smooth_time",
    "stream_sequence",
]
