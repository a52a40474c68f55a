"""IoU tracker with Hungarian assignment: stable short person ids across frames.

Boxes are (x, y, w, h) in pixels. A detection matched to a track (IoU >= min_iou, optimal
assignment) updates it; unmatched detections start tracks with the next id (ids start at 1
and are never reused); a track not seen for ``max_age`` sampled frames is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass
class Track:
    track_id: int
    box: tuple[float, float, float, float]
    score: float
    age: int = 0  # sampled frames since creation
    missed: int = 0  # sampled frames since last matched
    hits: int = 1
    external_id: int | None = None  # id given by an upstream tracker, if any
    extra: dict = field(default_factory=dict)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) xywh -> (N, M) IoU."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax0, ay0, ax1, ay1 = a[:, 0], a[:, 1], a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


class IouTracker:
    def __init__(self, min_iou: float = 0.3, max_age: int = 10, max_tracks: int = 64):
        self.min_iou, self.max_age, self.max_tracks = min_iou, max_age, max_tracks
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track; ids keep counting (an id is never reused within a run, even across a
        bag loop: a consumer's history of person 1 must not continue with someone else)."""
        self.tracks = []

    def update(self, boxes, scores=None, external_ids=None) -> list[Track]:
        """One sampled frame of detections -> current (matched or recently seen) tracks."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64)
        for t in self.tracks:
            t.age += 1
            t.missed += 1
        matched_det = set()
        if external_ids is not None:  # trust an upstream tracker's ids when given
            by_ext = {t.external_id: t for t in self.tracks}
            for d, ext in enumerate(external_ids):
                if ext in by_ext:
                    self._assign(by_ext[ext], boxes[d], scores[d])
                    matched_det.add(d)
        free_tracks = [t for t in self.tracks if t.missed > 0]
        free_dets = [d for d in range(len(boxes)) if d not in matched_det]
        if free_tracks and free_dets:
            ious = iou_matrix(np.array([t.box for t in free_tracks]), boxes[free_dets])
            rows, cols = linear_sum_assignment(-ious)
            for r, c in zip(rows, cols, strict=True):
                if ious[r, c] >= self.min_iou:
                    self._assign(free_tracks[r], boxes[free_dets[c]], scores[free_dets[c]])
                    matched_det.add(free_dets[c])
        for d in range(len(boxes)):
            if d not in matched_det:
                ext = None if external_ids is None else external_ids[d]
                self.tracks.append(Track(self._next_id, tuple(boxes[d]), float(scores[d]), external_id=ext))
                self._next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_age]
        if len(self.tracks) > self.max_tracks:  # ids churning every frame must not grow memory
            self.tracks = sorted(self.tracks, key=lambda t: (t.missed, -t.hits))[: self.max_tracks]
        return sorted(self.tracks, key=lambda t: t.track_id)

    @staticmethod
    def _assign(track: Track, box, score) -> None:
        track.box, track.score, track.missed = tuple(float(v) for v in box), float(score), 0
        track.hits += 1
