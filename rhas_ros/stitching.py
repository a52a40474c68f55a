"""Stitching overlapping window predictions of one person into stable action segments.

Frames are identified by a per-stream sampled-frame index k (monotone) with their camera
stamps. Each window's per-class probabilities are averaged into a per-frame buffer (the same
rule as hopadiff.windows for offline evaluation); segments are runs of active frames per
class (multi-label: probability >= threshold; single-label: argmax). A segment keeps its id
while later windows extend or revise it (revision += 1 on every change), becomes FINAL once
it ends before the newest window's first frame, and is then never changed again. A segment
that a later window retracts is published one last time as FINAL with confidence 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

ONGOING, FINAL = 0, 1


@dataclass
class Segment:
    segment_id: int
    class_id: int
    start_k: int
    end_k: int  # inclusive
    confidence: float
    revision: int = 0
    status: int = ONGOING

    def key(self):
        return (self.start_k, self.end_k, round(self.confidence, 4), self.status)


class SegmentStitcher:
    """One per person. ``add_window`` returns the segments overlapping the window plus any
    that became FINAL (or were retracted) with it."""

    _ids = itertools.count(1)  # segment ids unique across all persons of a node run

    def __init__(
        self,
        num_classes: int,
        multi_label: bool = True,
        threshold: float = 0.5,
        smooth: int = 1,
        at_least_one: bool = True,
    ):
        self.C, self.multi_label, self.threshold, self.smooth = num_classes, multi_label, threshold, smooth
        self.at_least_one = at_least_one  # multi-label: the most probable class is always active
        self.sum: dict[int, np.ndarray] = {}
        self.count: dict[int, int] = {}
        self.stamps: dict[int, int] = {}
        self.open: list[Segment] = []
        self._keep_from = 0

    def _activity(self, ks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        probs = np.stack([self.sum[k] / self.count[k] for k in ks], axis=1)  # (C, n)
        if self.smooth > 1:
            probs = median_filter(probs, size=(1, self.smooth), mode="nearest")  # along time only
        active = probs >= self.threshold if self.multi_label else np.zeros_like(probs, dtype=bool)
        if not self.multi_label or self.at_least_one:
            active[probs.argmax(axis=0), np.arange(probs.shape[1])] = True
        return active, probs

    def add_window(self, ks: list[int], stamps: list[int], probs: np.ndarray) -> list[Segment]:
        """ks: frame indices of the window (ascending), stamps: their stamps (ns), probs (C, n)."""
        assert probs.shape == (self.C, len(ks)), f"probs {probs.shape} for {len(ks)} frames, {self.C} classes"
        for i, (k, s) in enumerate(zip(ks, stamps, strict=True)):
            if k in self.sum:
                self.sum[k] = self.sum[k] + probs[:, i]
                self.count[k] += 1
            else:
                self.sum[k], self.count[k] = probs[:, i].astype(np.float64), 1
            self.stamps[k] = s
        k0, k1 = ks[0], ks[-1]
        base = min([k0] + [s.start_k for s in self.open])
        span = [k for k in range(base, k1 + 1) if k in self.sum]
        active, p = self._activity(span)
        runs = []  # (class, start_k, end_k, confidence)
        for c in range(self.C):
            a = active[c]
            i = 0
            while i < len(span):
                if a[i]:
                    j = i
                    while j + 1 < len(span) and a[j + 1]:
                        j += 1
                    runs.append((c, span[i], span[j], float(p[c, i : j + 1].mean())))
                    i = j + 1
                else:
                    i += 1
        out, still_open, used = [], [], set()
        for c, s, e, conf in runs:
            status = FINAL if e < k0 else ONGOING
            best, overlap = None, 0
            for seg in self.open:
                if seg.class_id == c and id(seg) not in used:
                    ov = min(e, seg.end_k) - max(s, seg.start_k) + 1
                    if ov > overlap:
                        best, overlap = seg, ov
            if best is None:
                seg = Segment(next(self._ids), c, s, e, conf, 0, status)
            else:
                used.add(id(best))
                seg = best
                before = seg.key()
                seg.start_k, seg.end_k, seg.confidence, seg.status = s, e, conf, status
                if seg.key() != before:
                    seg.revision += 1
            if status == ONGOING:
                still_open.append(seg)
            if e >= k0 or status == FINAL:
                out.append(seg)
        for seg in self.open:  # retracted by this window
            if id(seg) not in used:
                seg.status, seg.confidence, seg.revision = FINAL, 0.0, seg.revision + 1
                out.append(seg)
        self.open = still_open
        self._keep_from = min([k0] + [s.start_k for s in self.open])
        return sorted(out, key=lambda s: (s.start_k, s.class_id))

    def prune(self) -> None:
        """Forget frames no open segment or future window can touch (call after publishing)."""
        keep_from = self._keep_from
        for k in [k for k in self.sum if k < keep_from]:
            del self.sum[k], self.count[k], self.stamps[k]
