"""Person tracking, split as ByteTrack splits it.

kalman.py    BoxKalman: the constant-velocity motion model on a person's box
matching.py  iou_matrix, enlarge, unit/cosine, assign: costs and the minimum-cost matching
tracker.py   PersonTracker, Track, TrackState, Detections, TrackerParams
"""

from .kalman import BoxKalman, xywh_to_z, z_to_xywh
from .matching import assign, iou_matrix
from .tracker import Detections, PersonTracker, Track, TrackerParams, TrackState

__all__ = [
    "BoxKalman",
    "Detections",
    "PersonTracker",
    "Track",
    "TrackState",
    "TrackerParams",
    "assign",
    "iou_matrix",
    "xywh_to_z",
    "z_to_xywh",
]
