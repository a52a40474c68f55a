"""Person tracking, split as ByteTrack splits it.

kalman.py    BoxKalman: the constant-velocity motion model on a person's box
matching.py  iou_matrix, enlarge, unit/cosine, assign: costs and the minimum-cost matching
track.py     Track, TrackState (tentative, tracked, lost), Detections: one frame's boxes as one object
tracker.py   PersonTracker, TrackerParams: the association, step by step
"""

from .kalman import BoxKalman, xywh_to_z, z_to_xywh
from .matching import assign, iou_matrix
from .track import Detections, Track, TrackState
from .tracker import PersonTracker, TrackerParams

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
