"""Stitching overlapping windows of one person into segments with ids, revisions and a status.

The segment contract (rhas_msgs/ActionSegment): a segment keeps its id for its whole life; its
revision grows by one on every change; it is published FINAL exactly once and never changes
after that. It becomes FINAL when it ends before the newest window, when a later window
retracts it (confidence 0), or when its person's stream is closed (``finish``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .activity import ActivityRule


class SegmentStatus(IntEnum):
    """The status of a published segment: the values of rhas_msgs/ActionSegment's STATUS_* constants
    (a test keeps them equal; hopadiff cannot import ROS messages)."""

    ONGOING = 0  # may still be revised
    FINAL = 1  # never changes again


ONGOING, FINAL = SegmentStatus.ONGOING, SegmentStatus.FINAL


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
    status: SegmentStatus = ONGOING
    frozen_sum: float = 0.0  # probability mass of frozen frames (before the newest window)
    frozen_n: int = 0
    frozen_end_k: int = -1  # last frozen frame inside the segment
    frozen_end_ns: int = 0

    def key(self):
        return (self.start_k, self.end_k, round(self.confidence, 4), self.status)


def find_runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along time in a (C, n) bool array -> (class, first index, last index), ordered by
    class then start (numpy; no loop over classes x frames)."""
    edges = np.diff(np.pad(active, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    cls, starts = np.nonzero(edges == 1)  # row-major: per class in time order
    _, stops = np.nonzero(edges == -1)
    return cls, starts, stops - 1


SEGMENT_IDS = itertools.count(1)  # the default id source: unique across all persons and streams of a process


class SegmentStitcher:
    """One per person. Each window's per-class probabilities are averaged into a per-frame buffer;
    segments are runs of active frames per class.

    Frames older than the newest window's first frame can no longer change: they are frozen,
    folded into the statistics of the segments that cover them and forgotten, so memory stays
    bounded however long an action lasts. ``record`` keeps every frozen frame's final
    probabilities and activity (for evaluation; unbounded, off in the node)."""

    def __init__(self, num_classes: int, rule: ActivityRule | None = None, record: bool = False, ids=None):
        """``ids``: where segment ids come from (default SEGMENT_IDS: never reused in the process)."""
        self.C = num_classes
        self.ids = SEGMENT_IDS if ids is None else ids
        self.rule = rule or ActivityRule()  # the Segmenter replaces it when its parameters change
        self.sum: dict[int, np.ndarray] = {}  # frame k -> summed probabilities (C,), only inside the live span
        self.count: dict[int, int] = {}
        self.stamps: dict[int, int] = {}
        self.open: list[Segment] = []
        self.last_k = -1  # newest frame ever added
        self.record = record
        self.frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # recorded: k -> (probs (C,), active (C,))
        self._shown: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # k -> what the last window decided

    def _activity(self, ks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        return self.rule.apply(np.stack([self.sum[k] / self.count[k] for k in ks], axis=1))  # (C, n)

    def _freeze_before(self, k0: int) -> None:
        """Fold frames older than k0 into the open segments that cover them, then forget them."""
        old = sorted(k for k in self.sum if k < k0)
        if not old:
            return
        probs = np.stack([self.sum[k] / self.count[k] for k in old], axis=1)  # (C, n)
        ks = np.array(old)
        # The frozen frames a segment covers are one slice of the sorted list (all bounds at once).
        los = np.searchsorted(ks, [seg.start_k for seg in self.open], "left").tolist()
        his = np.searchsorted(ks, [seg.end_k for seg in self.open], "right").tolist()
        for seg, lo, hi in zip(self.open, los, his, strict=True):
            if hi > lo:
                for v in probs[seg.class_id, lo:hi].tolist():  # summed in frame order, as it arrived
                    seg.frozen_sum += v
                seg.frozen_n += hi - lo
                seg.frozen_end_k = old[hi - 1]
                seg.frozen_end_ns = self.stamps[seg.frozen_end_k]
        for k in old:
            if self.record:
                self.frames[k] = self._shown[k]
            self._shown.pop(k, None)
            del self.sum[k], self.count[k], self.stamps[k]

    def add_window(self, ks: list[int], stamps: list[int], probs: np.ndarray) -> list[Segment]:
        """ks: frame indices of the window (ascending), stamps: their stamps (ns), probs (C, n).
        Returns the segments overlapping the window plus any that became FINAL with it."""
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
        self.last_k = max(self.last_k, ks[-1])
        span = sorted(self.sum)
        active, p = self._activity(span)
        if self.record:
            self._shown.update({k: (p[:, i].astype(np.float32), active[:, i].copy()) for i, k in enumerate(span)})
        csum = np.concatenate([np.zeros((self.C, 1)), np.cumsum(p, axis=1)], axis=1)
        cls, starts, ends = find_runs(active)
        out, still_open, matched = [], [], set()
        by_class: dict[int, list[Segment]] = {}  # a run only continues a segment of its class
        for seg in self.open:
            by_class.setdefault(seg.class_id, []).append(seg)
        for c, i, j in zip(cls.tolist(), starts.tolist(), ends.tolist(), strict=True):
            s, e, psum, n = span[i], span[j], float(csum[c, j + 1] - csum[c, i]), j - i + 1
            best, overlap = None, -1
            for seg in by_class.get(c, ()):
                if id(seg) in matched:
                    continue
                # A segment reaching into the window continues a run that starts at its first frame.
                touches = seg.start_k < k0 and s == k0 and seg.end_k >= k0 - 1
                ov = min(e, seg.end_k) - max(s, seg.start_k) + 1
                if touches:
                    ov = max(ov, 1)
                if ov > overlap and ov > 0:
                    best, overlap = seg, ov
            if best is None:
                seg = Segment(next(self.ids), c, s, e, self.stamps[s], self.stamps[e], psum / n)
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
        """The stream ends: every open segment becomes FINAL as it stands."""
        self._freeze_before(self.last_k + 1)
        for seg in self.open:
            seg.status, seg.revision = FINAL, seg.revision + 1
        done, self.open = self.open, []
        return done
