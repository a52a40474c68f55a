"""Streaming segmentation: the one definition of what the robot publishes, shared by the ROS
node (rhas_ros.core.pipeline) and ``hopadiff-eval --streaming``.

It owns everything between the backbone's features and the published segments (the person
crops the features come from are hopadiff.frames.crop, which the feature extractor uses too):

- the window schedule: per person a trailing window of the last W sampled frames (shorter
  while a track is young), inferred every ``hop`` sampled frames once it holds
  ``min_window_frames`` frames,
- the start noise: the same seed for every window (eta 0 gives the same output for the same
  input, so overlapping windows do not flicker),
- the activity rule (multi-label: probability >= threshold, plus the most probable class when
  ``at_least_one_action``; single-label: argmax) and median smoothing along time,
- stitching overlapping windows into segments with ids, revisions and ONGOING/FINAL status.

The segment contract: a segment keeps its id for its whole life; its revision grows by one on
every change; it is published FINAL exactly once and never changes after that. It becomes
FINAL when it ends before the newest window, when a later window retracts it (confidence 0),
or when its person's stream is closed (``Segmenter.close``: track lost, target switched,
query cleared or changed, stream reset, node deactivated or shut down). Frames that a closed
stream covered are never segmented again for that person (no second segment over the same
frames).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from scipy.ndimage import median_filter

ONGOING, FINAL = 0, 1


def setting(default, description: str, *, range=None, choices=None, dynamic: bool = False, yaml_note: str = ""):
    """A dataclass field with what a ROS parameter declaration needs: description, allowed range
    or choices, and whether it may change while the node runs (dynamic)."""
    meta = {"description": description, "range": range, "choices": choices, "dynamic": dynamic, "yaml_note": yaml_note}
    return field(default=default, metadata=meta)


@dataclass
class StreamConfig:
    """Streaming settings. Field names are the node's parameter names (rhas_ros.core.settings
    extends this class); 0 for window/hop means the checkpoint's training value."""

    window: int = setting(0, "W: sampled frames per HopaDIFF window (0 = the checkpoint's training window)",
                          range=(0, 100000))  # fmt: skip
    hop: int = setting(0, "run HopaDIFF every hop sampled frames (0 = the checkpoint's)", range=(0, 100000))
    min_window_frames: int = setting(16, "first inference once a person has this many frames", range=(2, 100000))
    inference_phases: int = setting(
        1, "everyone mode: spread the persons' windows over this many frames of each hop (person p in phase "
        "p mod N, phases hop/N frames apart): 1 = every person in one batched pass (most frames/s); more = fewer "
        "persons per inference frame (lower latency, each person still updated once per hop)", range=(1, 1000),
        dynamic=True,
    )  # fmt: skip
    ddim_steps: int = setting(0, "DDIM sampling steps (0 = the checkpoint's config)", range=(0, 1000), dynamic=True)
    eta: float = setting(0.0, "DDIM eta; 0 = deterministic output (no flicker between windows)", range=(0.0, 1.0),
                         dynamic=True)  # fmt: skip
    seed: int = setting(0, "seed of the start noise (the same for every window)", dynamic=True)
    threshold: float = setting(0.5, "probability at which a (multi-label) action counts as active", range=(0.0, 1.0),
                               dynamic=True)  # fmt: skip
    at_least_one_action: bool = setting(
        True, "multi-label: report the most probable action on every frame (and all above threshold)", dynamic=True
    )
    smooth: int = setting(5, "median filter length along time, in sampled frames (1 = off)", range=(1, 99),
                          dynamic=True)  # fmt: skip
    warm_start: bool = setting(
        True, "start each window's DDIM chain from the previous window's estimate, re-noised, and run only "
        "warm_start_steps steps (first window and after a target switch or reset: cold)", dynamic=True,
    )  # fmt: skip
    warm_start_steps: int = setting(6, "DDIM steps of a warm-started window (the last ones of the schedule)",
                                    range=(1, 1000), dynamic=True)  # fmt: skip

    @classmethod
    def stream_fields(cls) -> list[str]:
        return [f.name for f in fields(StreamConfig)]


# ---------------------------------------------------------------------------------- segments
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


def find_runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True along time in a (C, n) bool array -> (class, first index, last index), ordered by
    class then start (numpy; no loop over classes x frames)."""
    edges = np.diff(np.pad(active, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    cls, starts = np.nonzero(edges == 1)  # row-major: per class in time order
    _, stops = np.nonzero(edges == -1)
    return cls, starts, stops - 1


_SEGMENT_IDS = itertools.count(1)  # unique across all persons and streams of a process; never reused


class SegmentStitcher:
    """One per person. Each window's per-class probabilities are averaged into a per-frame buffer;
    segments are runs of active frames per class.

    Frames older than the newest window's first frame can no longer change: they are frozen,
    folded into the statistics of the segments that cover them and forgotten, so memory stays
    bounded however long an action lasts. ``record`` keeps every frozen frame's final
    probabilities and activity (for evaluation; unbounded, off in the node)."""

    def __init__(
        self,
        num_classes: int,
        multi_label: bool = True,
        threshold: float = 0.5,
        smooth: int = 1,
        at_least_one: bool = True,
        record: bool = False,
    ):
        self.C, self.multi_label, self.threshold, self.smooth = num_classes, multi_label, threshold, smooth
        self.at_least_one = at_least_one
        self.sum: dict[int, np.ndarray] = {}  # frame k -> summed probabilities (C,), only inside the live span
        self.count: dict[int, int] = {}
        self.stamps: dict[int, int] = {}
        self.open: list[Segment] = []
        self.last_k = -1  # newest frame ever added
        self.record = record
        self.frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # recorded: k -> (probs (C,), active (C,))
        self._shown: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # k -> what the last window decided

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
                seg = Segment(next(_SEGMENT_IDS), c, s, e, self.stamps[s], self.stamps[e], psum / n)
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


# ---------------------------------------------------------------------------------- streaming
@dataclass
class WindowOutput:
    """Segments of one person published together: after a window, or when its stream closed."""

    person_id: int
    window_start_ns: int
    window_end_ns: int
    segments: list[Segment]
    closed: bool = False  # True: the stream was closed (every segment FINAL)


class _PersonBuffer:
    def __init__(self, window: int):
        self.ks: deque[int] = deque(maxlen=window)
        self.partial: deque[np.ndarray] = deque(maxlen=window)
        self.visible: deque[bool] = deque(maxlen=window)


class Segmenter:
    """Buffers, window schedule, inference and stitching for the persons of one camera stream.

    One ring of W holistic features (shared by all persons) and, per person, a ring of W
    (partial feature, visible) aligned to the same sampled frames. ``add_frame`` appends a sampled
    frame; ``due`` says whether frame k is an inference frame; ``infer`` runs one batched forward
    pass per window length for the persons asked for; ``close`` ends persons' streams."""

    def __init__(self, model, num_classes: int, cfg: StreamConfig, record: bool = False):
        if not cfg.window or not cfg.hop:
            raise ValueError("StreamConfig.window and hop must be set (0 means the checkpoint's: resolve them first)")
        self.model, self.C, self.cfg, self.record = model, num_classes, cfg, record
        self.multi_label = model.cfg.multi_label
        self.device = next(model.parameters()).device
        # record=True: per person, frame k -> (probabilities, activity) as finally published
        self.recorded: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every buffer (after ``close``: a reset never leaves a segment open)."""
        W = self.cfg.window
        self.ks: deque[int] = deque(maxlen=W)
        self.holistic: deque[np.ndarray] = deque(maxlen=W)
        self.stamps: dict[int, int] = {}
        self.persons: dict[int, _PersonBuffer] = {}
        self.stitchers: dict[int, SegmentStitcher] = {}
        self.closed_until: dict[int, int] = {}  # person -> last frame a closed stream of theirs covered
        self.last_stamp_ns = 0
        self.previous: dict[int, tuple[list[int], np.ndarray]] = {}  # person -> last window (ks, branch probs)
        self.last_top: dict[int, dict[int, int]] = {}  # person -> frame -> top class of the last window
        self.flicker = [0, 0]  # record=True: top-class changes, comparisons (a frame seen again by a later window)

    def clear_holistic(self) -> None:
        """The holistic features belong to an old query (text-conditioned checkpoints)."""
        self.ks.clear()
        self.holistic.clear()
        self.persons.clear()
        self.previous.clear()

    def memory_frames(self) -> int:
        return len(self.holistic) + sum(len(p.ks) for p in self.persons.values())

    def add_frame(self, k: int, stamp_ns: int, holistic: np.ndarray, partial: dict[int, np.ndarray | None]) -> list:
        """Sampled frame k: its holistic feature and, per tracked person, the crop feature (None:
        tracked but not seen). Persons missing from ``partial`` are gone: their streams close."""
        self.ks.append(k)
        self.holistic.append(np.asarray(holistic, dtype=np.float32))
        self.stamps[k] = stamp_ns
        self.last_stamp_ns = stamp_ns
        D = self.holistic[-1].shape[0]
        for pid, feat in partial.items():
            buf = self.persons.setdefault(pid, _PersonBuffer(self.cfg.window))
            buf.ks.append(k)
            buf.partial.append(np.zeros(D, np.float32) if feat is None else np.asarray(feat, dtype=np.float32))
            buf.visible.append(feat is not None)
        gone = [pid for pid in {*self.persons, *self.stitchers} if pid not in partial]
        for pid in gone:
            self.persons.pop(pid, None)
        closed = self.close(gone)
        oldest = self.ks[0]
        for kk in [kk for kk in self.stamps if kk < oldest]:
            del self.stamps[kk]
        return closed

    def due(self, k: int, pid: int = 0) -> bool:
        """Is frame k an inference frame for person ``pid`` (``inference_phases``)?"""
        hop = self.cfg.hop
        phases = max(1, min(self.cfg.inference_phases, hop))
        return (k - (pid % phases) * (hop // phases)) % hop == 0

    def ready(self, pid: int) -> bool:
        buf = self.persons.get(pid)
        return buf is not None and len(buf.ks) >= min(self.cfg.min_window_frames, self.cfg.window)

    def _window(self, pid: int):
        buf = self.persons[pid]
        n = len(buf.ks)
        hol = np.stack(list(self.holistic)[-n:])  # aligned: the person buffer holds the last n frames
        assert list(self.ks)[-n:] == list(buf.ks), "person buffer out of step with the frame ring"
        return hol, np.stack(buf.partial), np.array(buf.visible), list(buf.ks)

    @torch.inference_mode()
    def infer(self, pids: list[int]) -> list[WindowOutput]:
        """One window per ready person (ending at the newest frame), batched per window length and
        start (cold, or warm from the person's previous window)."""
        groups: dict[tuple[int, bool], list[int]] = {}
        for pid in pids:
            if self.ready(pid):
                warm = self.cfg.warm_start and pid in self.previous
                groups.setdefault((len(self.persons[pid].ks), warm), []).append(pid)
        outputs = []
        for (_, warm), group in sorted(groups.items()):
            wins = [self._window(pid) for pid in group]
            hol = torch.from_numpy(np.stack([w[0].T for w in wins])).to(self.device)
            par = torch.from_numpy(np.stack([w[1].T for w in wins])).to(self.device)
            vis = torch.from_numpy(np.stack([w[2] for w in wins])).to(self.device)
            gen = torch.Generator(self.device).manual_seed(self.cfg.seed)
            init = torch.from_numpy(np.stack([self._init(pid, w[3]) for pid, w in zip(group, wins, strict=True)])) \
                if warm else None  # fmt: skip
            branches = self.model.predict(
                hol, par, vis, steps=self.cfg.ddim_steps or None, eta=self.cfg.eta, generator=gen,
                return_branches=True, init=None if init is None else init.to(self.device),
                init_steps=self.cfg.warm_start_steps,
            )  # fmt: skip
            probs = self.model.fusion(branches).float().cpu().numpy()
            branches = branches.float().cpu().numpy()
            for pid, w, p, b in zip(group, wins, probs, branches, strict=True):
                ks = w[3]
                self.previous[pid] = (ks, b)
                if self.record:  # evaluation's flicker statistic; the node does not need it
                    self._count_flicker(pid, ks, p)
                keep = [i for i, k in enumerate(ks) if k > self.closed_until.get(pid, -1)]
                if not keep:
                    continue
                ks = [ks[i] for i in keep]
                st = self.stitchers.get(pid)
                if st is None:
                    st = self.stitchers[pid] = SegmentStitcher(
                        self.C, self.multi_label, self.cfg.threshold, self.cfg.smooth,
                        self.cfg.at_least_one_action, self.record,
                    )  # fmt: skip
                st.threshold, st.smooth, st.at_least_one = (
                    self.cfg.threshold,
                    self.cfg.smooth,
                    self.cfg.at_least_one_action,
                )
                segs = st.add_window(ks, [self.stamps[k] for k in ks], p[:, keep])
                outputs.append(WindowOutput(pid, self.stamps[ks[0]], self.stamps[ks[-1]], segs))
        return outputs

    def _init(self, pid: int, ks: list[int]) -> np.ndarray:
        """The previous window's branch probabilities moved onto this window's frames (NaN: new)."""
        prev_ks, prev = self.previous[pid]
        col = {k: i for i, k in enumerate(prev_ks)}
        out = np.full((*prev.shape[:2], len(ks)), np.nan, np.float32)
        for j, k in enumerate(ks):
            if k in col:
                out[:, :, j] = prev[:, :, col[k]]
        return out

    def _count_flicker(self, pid: int, ks: list[int], probs: np.ndarray) -> None:
        top = probs.argmax(axis=0)
        last = self.last_top.get(pid, {})
        for k, c in zip(ks, top.tolist(), strict=True):
            if k in last:
                self.flicker[0] += int(last[k] != c)
                self.flicker[1] += 1
        self.last_top[pid] = dict(zip(ks, top.tolist(), strict=True))

    def close(self, pids=None) -> list[WindowOutput]:
        """End persons' streams (all when None): every open segment is published FINAL; frames
        these streams covered are not segmented again."""
        outputs = []
        for pid in {*self.stitchers, *self.previous} if pids is None else list(pids):
            self.previous.pop(pid, None)  # the next window of this person starts cold
            self.last_top.pop(pid, None)
            st = self.stitchers.pop(pid, None)
            if st is None:
                continue
            self.closed_until[pid] = st.last_k
            done = st.finish()
            if self.record:
                self.recorded.setdefault(pid, {}).update(st.frames)
            if done:
                start = min(s.start_ns for s in done)
                outputs.append(WindowOutput(pid, start, self.last_stamp_ns, done, closed=True))
        return outputs


def stream_sequence(model, holistic, partial, visible, cfg: StreamConfig, fps: float = 10.0, stats=None):
    """Replay one recorded sequence (T frames of features) through a Segmenter exactly as the node
    runs it for one tracked person (id 0), closing the stream at the end.

    -> (probs (C, T), active (C, T), covered (T,) bool, segments: the published FINAL segments).
    ``stats`` (a dict): gets "flicker_changes"/"flicker_frames" added (top-class changes when a
    later window sees a frame again, and how many such comparisons)."""
    T = len(holistic)
    C = model.cfg.num_classes
    seg = Segmenter(model, C, cfg, record=True)
    published: dict[int, Segment] = {}
    for k in range(T):
        stamp = round(k * 1e9 / fps)
        outs = seg.add_frame(k, stamp, holistic[k], {0: partial[k] if visible[k] else None})
        if seg.due(k):
            outs += seg.infer([0])
        for o in outs:
            published.update({s.segment_id: s for s in o.segments})
    if stats is not None:
        stats["flicker_changes"] = stats.get("flicker_changes", 0) + seg.flicker[0]
        stats["flicker_frames"] = stats.get("flicker_frames", 0) + seg.flicker[1]
    for o in seg.close():
        published.update({s.segment_id: s for s in o.segments})
    probs, active = np.zeros((C, T), np.float32), np.zeros((C, T), bool)
    covered = np.zeros(T, bool)
    for k, (p, a) in seg.recorded.get(0, {}).items():
        probs[:, k], active[:, k], covered[k] = p, a, True
    finals = sorted(published.values(), key=lambda s: (s.start_k, s.class_id))
    return probs, active, covered, finals
