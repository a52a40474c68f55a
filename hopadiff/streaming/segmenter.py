"""Streaming segmentation: the one definition of what the robot publishes, shared by the ROS
node (rhas_ros.core.pipeline) and ``hopadiff-eval --streaming``.

``Segmenter`` owns everything between the backbone's features and the published segments (the
person crops the features come from are hopadiff.frames.crop, which the feature extractor uses
too): per person a trailing window of the last W sampled frames (shorter while a track is
young), inferred every ``hop`` sampled frames once it holds ``min_window_frames`` frames, with
the same start noise for every window (eta 0 gives the same output for the same input, so
overlapping windows do not flicker); the windows' probabilities go through the activity rule
(hopadiff.streaming.activity) and are stitched into segments (hopadiff.streaming.stitcher).

A person's stream is closed (``Segmenter.close``: track lost, target switched, query cleared or
changed, stream reset, node deactivated or shut down): every open segment is published FINAL,
and the frames that stream covered are never segmented again for that person (no second
segment over the same frames).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from .activity import ActivityRule
from .config import StreamConfig
from .stitcher import Segment, SegmentStitcher


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

    def __init__(self, model, num_classes: int, cfg: StreamConfig, record: bool = False, segment_ids=None):
        """``segment_ids``: the source of segment ids (default: one for the whole process, so ids
        are never reused; a recording replayed by rhas_bag numbers its own from 1)."""
        self.model, self.C, self.cfg, self.record = model, num_classes, cfg, record
        self.segment_ids = segment_ids
        self.multi_label = model.cfg.multi_label
        self.device = next(model.parameters()).device
        # record=True: per person, frame k -> (probabilities, activity) as finally published
        self.recorded: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self.reset()

    def apply(self, cfg: StreamConfig) -> None:
        """New settings from the next window on (the buffers are sized by the window: it stays)."""
        if cfg.window != self.cfg.window:
            raise ValueError(f"window {self.cfg.window} -> {cfg.window}: the buffers are sized by it (reconfigure)")
        self.cfg = cfg
        for st in self.stitchers.values():
            st.rule = self.rule

    @property
    def rule(self) -> ActivityRule:
        c = self.cfg
        return ActivityRule(self.multi_label, c.threshold, c.at_least_one_action, c.smooth)

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
                hol, par, vis, steps=self.cfg.ddim_steps, eta=self.cfg.eta, generator=gen,
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
                    st = self.stitchers[pid] = SegmentStitcher(self.C, self.rule, self.record, self.segment_ids)
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
