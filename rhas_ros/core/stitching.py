"""Stitching overlapping window predictions of one person into stable action segments.

Frames are identified by a per-stream sampled-frame index k (monotone) with their camera
stamps. Each window's per-class probabilities are averaged into a per-frame buffer (the same
rule as hopadiff.windows for offline evaluation); segments are runs of active frames per
class (multi-label: probability >= threshold, plus the most probable class when
``at_least_one``; single-label: argmax).

Frames older than the newest window's first frame can no longer change: they are frozen,
folded into the statistics of the segments that cover them and forgotten, so memory stays
bounded however long an action lasts. A segment keeps its id while later windows extend or
revise it (revision += 1 on every change), becomes FINAL once it ends before the newest
window, and is then never changed again. A segment that a later window retracts is published
one last time as FINAL with confidence 0.
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
    start_ns: int
    end_ns: int
    confidence: float
    revision: int = 0
    status: int = ONGOING
    frozen_sum: float = 0.0  # probability mass of frozen frames (before the newest window)
    frozen_n: int = 0
    frozen_end_k: int = -1  # last frozen frame inside the segment
    frozen_end_ns: int = 0

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
        self.sum: dict[int, np.ndarray] = {}  # frame k -> summed probabilities (C,), only inside the live span
        self.count: dict[int, int] = {}
        self.stamps: dict[int, int] = {}
        self.open: list[Segment] = []

    def _activity(self, ks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        probs = np.stack([self.sum[k] / self.count[k] for k in ks], axis=1)  # (C, n)
        if self.smooth > 1:
            probs = median_filter(probs, size=(1, self.smooth), mode="nearest")  # along time only
        active = probs >= self.threshold if self.multi_label else np.zeros_like(probs, dtype=bool)
        if not self.multi_label or self.at_least_one:
            active[probs.argmax(axis=0), np.arange(probs.shape[1])] = True
        return active, probs

    def _freeze_before(self, k0: int) -> None:
        """Fold frames older than k0 into the open segments that cover them, then forget them."""
        old = sorted(k for k in self.sum if k < k0)
        for k in old:
            p = self.sum[k] / self.count[k]
            for seg in self.open:
                if seg.start_k <= k <= seg.end_k:
                    seg.frozen_sum += float(p[seg.class_id])
                    seg.frozen_n += 1
                    seg.frozen_end_k, seg.frozen_end_ns = k, self.stamps[k]
            del self.sum[k], self.count[k], self.stamps[k]

    def add_window(self, ks: list[int], stamps: list[int], probs: np.ndarray) -> list[Segment]:
        """ks: frame indices of the window (ascending), stamps: their stamps (ns), probs (C, n)."""
        assert probs.shape == (self.C, len(ks)), f"probs {probs.shape} for {len(ks)} frames, {self.C} classes"
        k0 = ks[0]
        self._freeze_before(k0)
        for i, (k, s) in enumerate(zip(ks, stamps, strict=True)):
            if k in self.sum:
                self.sum[k] = self.sum[k] + probs[:, i]
                self.count[k] += 1
            else:
                self.sum[k], self.count[k] = probs[:, i].astype(np.float64), 1
            self.stamps[k] = s
        span = sorted(self.sum)
        active, p = self._activity(span)
        runs = []  # (class, start_k, end_k, probability sum, frames)
        for c in range(self.C):
            i = 0
            while i < len(span):
                if active[c, i]:
                    j = i
                    while j + 1 < len(span) and active[c, j + 1]:
                        j += 1
                    runs.append((c, span[i], span[j], float(p[c, i : j + 1].sum()), j - i + 1))
                    i = j + 1
                else:
                    i += 1
        out, still_open, matched = [], [], set()
        for c, s, e, psum, n in runs:
            best, overlap = None, -1
            for seg in self.open:
                if seg.class_id != c or id(seg) in matched:
                    continue
                # A segment reaching into the window continues a run that starts at its first frame.
                touches = seg.start_k < k0 and s == k0 and seg.end_k >= k0 - 1
                ov = min(e, seg.end_k) - max(s, seg.start_k) + 1
                if touches:
                    ov = max(ov, 1)
                if ov > overlap and ov > 0:
                    best, overlap = seg, ov
            if best is None:
                seg = Segment(next(self._ids), c, s, e, self.stamps[s], self.stamps[e], psum / n)
            else:
                matched.add(id(best))
                seg, before = best, best.key()
                if seg.start_k >= k0:
                    seg.start_k, seg.start_ns = s, self.stamps[s]
                seg.end_k, seg.end_ns = e, self.stamps[e]
                seg.confidence = (seg.frozen_sum + psum) / (seg.frozen_n + n)
                if seg.key() != before:
                    seg.revision += 1
            still_open.append(seg)
            out.append(seg)
        for seg in self.open:
            if id(seg) in matched:
                continue
            if seg.start_k < k0 and seg.frozen_n:  # its frozen part stands: it ended before the window
                seg.end_k, seg.end_ns = seg.frozen_end_k, seg.frozen_end_ns
                seg.confidence = seg.frozen_sum / seg.frozen_n
            else:  # retracted by this window
                seg.confidence = 0.0
            seg.status, seg.revision = FINAL, seg.revision + 1
            out.append(seg)
        self.open = still_open
        return sorted(out, key=lambda s: (s.start_k, s.class_id))

    def finish(self) -> list[Segment]:
        """The person left: every open segment becomes FINAL."""
        for seg in self.open:
            seg.status, seg.revision = FINAL, seg.revision + 1
        done, self.open = self.open, []
        return done
