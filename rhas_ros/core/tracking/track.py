"""What the tracker reads and keeps: one frame's ``Detections``, and a ``Track`` with its
``TrackState`` (as ByteTrack's basetrack.py). Boxes are (x, y, w, h) pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from .kalman import z_to_xywh

MIN_SIDE_PX = 1.0  # a box smaller than a pixel is no person (and its motion model degenerates)
MAX_SIDE_PX = 1e5  # nor is one larger than any camera image; its squares overflow the filter


class TrackState(Enum):
    TENTATIVE = "tentative"  # not confirmed yet: no id, never reported
    TRACKED = "tracked"  # matched in the latest frame
    LOST = "lost"  # confirmed, unmatched since ``missed`` frames; kept for lost_seconds


@dataclass
class Detections:
    """One frame's detections: boxes (N, 4) xywh pixels, scores (N,), upstream track ids (or None)
    and appearance descriptors (one per box, None where there is none)."""

    boxes: np.ndarray
    scores: np.ndarray
    external_ids: list[int] | None = None
    embeddings: list | None = None

    @classmethod
    def of(cls, boxes, scores=None, external_ids=None, embeddings=None) -> Detections:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        return cls(boxes, scores, None if external_ids is None else list(external_ids), embeddings)

    @classmethod
    def sanitized(cls, boxes, scores, external_ids, max_boxes: int) -> tuple[Detections, int]:
        """Made safe whatever a detector or topic sends -> (finite boxes of MIN_SIDE_PX to MAX_SIDE_PX
        a side, at most ``max_boxes`` of the highest scores; how many were dropped). A box of a
        1e-300 pixel side once made the motion model's covariance singular on every later frame."""
        d = cls.of(boxes, scores, external_ids)
        if len(d.scores) != len(d.boxes):
            d.scores = np.ones(len(d.boxes))
        b = d.boxes
        with np.errstate(invalid="ignore"):
            sides = (b[:, 2:] >= MIN_SIDE_PX) & (b[:, 2:] <= MAX_SIDE_PX)
            sane = np.isfinite(b).all(axis=1) & sides.all(axis=1) & (np.abs(b[:, :2]) <= MAX_SIDE_PX).all(axis=1)
        sane &= np.isfinite(d.scores)
        keep = np.flatnonzero(sane)
        if len(keep) > max_boxes:  # bounded work and memory
            keep = keep[np.argsort(-d.scores[keep], kind="stable")[:max_boxes]]
        return d.take(keep), len(b) - len(keep)

    def take(self, rows) -> Detections:
        rows = list(rows)
        pick = lambda v: None if v is None else [v[i] for i in rows]  # noqa: E731
        return Detections(self.boxes[rows].reshape(-1, 4), self.scores[rows], pick(self.external_ids),
                          pick(self.embeddings))  # fmt: skip

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class Track:
    track_id: int | None  # None while TENTATIVE
    box: tuple[float, float, float, float]  # last matched box (the predicted one is ``predicted``)
    score: float
    state: TrackState = TrackState.TENTATIVE
    age: int = 0  # sampled frames since creation
    missed: int = 0  # sampled frames since last matched (0: seen in this frame)
    hits: int = 1
    external_id: int | None = None  # id given by an upstream tracker, if any
    streak: int = 1  # consecutive frames matched
    last_seen_ns: int = 0
    detection: int | None = None  # index of this frame's detection matched to the track
    mean: np.ndarray = field(default=None, repr=False)
    cov: np.ndarray = field(default=None, repr=False)
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def confirmed(self) -> bool:
        return self.state is not TrackState.TENTATIVE

    @property
    def seen(self) -> bool:
        """Matched in the latest frame."""
        return self.missed == 0

    @property
    def predicted(self) -> tuple[float, float, float, float]:
        return z_to_xywh(self.mean)
