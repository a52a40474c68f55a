"""PersonTracker: identities that last as long as HopaDIFF's windows.

A window is W sampled frames (W=256 at 5 fps is 51 s), so a person's id must survive crossings,
missed detections and occlusions of a few seconds. This is ByteTrack's association (Zhang et
al., ECCV 2022) with appearance re-identification in the manner of BoT-SORT; ``update`` reads as
its numbered steps. Motion is kalman.py, costs and the assignment matching.py.

- Motion: a lost track's predicted velocity fades (``lost_velocity_decay`` per frame: an unseen
  person may have stopped or turned) and its box keeps its last height (``LOST_SCALE``: the
  filter's height uncertainty grows while lost, a hidden person does not change size).
- Association: high-score detections against every confirmed track (IoU with the predicted box,
  fused with appearance cosine distance, inside the filter's gate and, when set, the appearance
  gate; near-ties go to a track seen in the last frame); a second pass with both boxes enlarged
  (C-BIoU), where a person alone whose box changed faster than any motion model predicts (a
  fall, a jump, a bend) may also match outside the gate; low-score detections against the
  tracks seen a frame ago (IoU only: a partly occluded person gives a weak detection, ByteTrack's
  key idea); re-identification of lost tracks by appearance, within the distance a person can
  walk in the time lost. Every assignment may leave a track and a box unmatched rather than take
  two poor pairs (``matching.assign``).
- Appearance: each track keeps an exponential average of its detections' descriptors (the node
  passes a colour histogram of the upper body by default, or the features the backbone computes
  for every crop anyway: no extra model runs), taught only by confident crops that show one
  person (``CROWDED_IOU``). A pair less similar than ``appearance_gate`` never matches, and a
  track leaves alone a detection that looks clearly more like another known person
  (``APPEARANCE_MARGIN``) — both only with a gate set: where descriptors carry no identity (a
  backbone with random weights) they would veto good matches by chance. The default gate is the
  one measured for the colour descriptor (scripts/bench_tracking.py).
- Life (``TrackState``): a new track is TENTATIVE until matched in ``confirm_frames``
  consecutive frames (a one-frame false detection never gets an id), then TRACKED while matched
  and LOST while not, for ``lost_seconds`` of stamp time; then it is removed.

Ids start at 1, are given at confirmation and never reused within a run. Detections with an
upstream id (the ``external`` detector's persons topic) are matched to the track with that id
first and are confirmed at birth: the upstream tracker already decided they are a person.

Written here rather than taken from a library: ``trackers`` / ``supervision`` (ByteTrack,
BoT-SORT) require opencv-python next to this package's opencv-python-headless (two builds of cv2
in one environment), PyAV and matplotlib, report only the tracks matched in the current frame
(the buffers need the lost ones too) and take no caller-supplied embeddings; ``filterpy``'s
KalmanFilter would add matplotlib for the 20 lines of kalman.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .kalman import GATE_CHI2, BoxKalman, xywh_to_z
from .matching import assign, cosine, enlarge, iou_matrix, unit
from .track import Detections, Track, TrackState

LOST_PENALTY = 0.05  # association cost added to a lost track (a visible one wins near-ties) ...
LOST_PENALTY_PER_FRAME = 0.02  # ... and per frame it has been lost ...
LOST_PENALTY_FRAMES = 10  # ... for at most this many frames
CROWDED_IOU = 0.1  # a crop overlapping another box more than this shows two persons
LOST_SCALE = 1.3  # a lost track matches (by motion) only boxes within this factor of its last height
FEET_REACH = (0.6, 0.3)  # a box matched outside the motion gate: its bottom centre moved at most this (x, y) x height
APPEARANCE_MARGIN = 0.1  # a detection looking this much more like another known person is not this one's
REID_HEIGHT_RANGE = (0.67, 1.5)  # a re-identified box's height over the lost track's last height


@dataclass(frozen=True)
class TrackerParams:
    high_score: float = 0.5  # detections at or above: first stage, may start tracks
    low_score: float = 0.1  # detections below are ignored; between: second stage only
    match_iou: float = 0.2  # first stage: IoU with the predicted box at least this
    low_match_iou: float = 0.5  # second stage (low-score detections): stricter
    buffer: float = 0.5  # first stage, second pass: boxes grown by this times their size on each side
    lost_velocity_decay: float = 0.9  # per frame lost, the predicted velocity is multiplied by this
    confirm_frames: int = 3  # consecutive matches before a new track gets an id
    lost_seconds: float = 8.0  # a confirmed track unmatched for longer is dropped
    reid_min_similarity: float = 0.85  # cosine similarity a lost track's appearance needs to come back
    reid_speed: float = 2.0  # box heights per second a lost person may have moved (re-ID distance gate)
    appearance_weight: float = 0.5  # first stage cost: (1 - w) * (1 - IoU) + w * (1 - cosine)
    appearance_gate: float = 0.3  # a track and a detection less similar than this never match (-1: off);
    # 0.3 is measured for the node's default descriptor, the colour histogram (rhas_ros.core.appearance)
    embedding_momentum: float = 0.9  # appearance: ema = m * ema + (1 - m) * new crop embedding
    max_tracks: int = 64


class Gate(Enum):
    """Which pairs an association stage allows beyond the IoU threshold."""

    MOTION = "motion"  # only pairs inside the Kalman gate
    UNLESS_ALONE = "unless-alone"  # also a person alone seen a frame ago whose box jumped (fall, jump, bend)
    NONE = "none"  # any pair (tentative tracks: no motion state worth gating on yet)


@dataclass(frozen=True)
class _Stage:
    min_iou: float
    appearance_weight: float  # 0: IoU only
    buffer: float = 0.0  # both boxes grown by this (C-BIoU)
    gate: Gate = Gate.MOTION


@dataclass
class _Frame:
    """What every step of one update looks at: the detections, unit descriptors, the crowded
    flags and the stamp."""

    dets: Detections
    embs: list
    crowded: np.ndarray
    stamp_ns: int


class PersonTracker:
    def __init__(self, params: TrackerParams | None = None, ids: Iterator[int] | None = None):
        """``ids``: where new track ids come from (default: 1, 2, ...). The node passes one source
        for its whole process, so ids are never reused, not even by the tracker of a later configure."""
        self.params = params or TrackerParams()  # replaced as a whole when parameters change
        self.tracks: list[Track] = []
        self._ids = itertools.count(1) if ids is None else ids

    def reset(self) -> None:
        """Forget every track; ids keep counting (an id is never reused within a run, even across a
        bag loop: a consumer's history of person 1 must not continue with someone else)."""
        self.tracks = []

    def update(self, dets: Detections, stamp_ns: int = 0) -> list[Track]:
        """One sampled frame of detections -> the confirmed tracks: TRACKED (``detection`` = the
        index of their box) or LOST for at most ``lost_seconds`` (``missed`` frames)."""
        p = self.params
        self._predict()
        embs = [None] * len(dets) if dets.embeddings is None else [unit(e) for e in dets.embeddings]
        f = _Frame(dets, embs, self._crowded(dets.boxes), stamp_ns)
        free = set(np.flatnonzero(dets.scores >= p.low_score).tolist())
        # Step 1: an upstream tracker's ids are trusted first.
        if dets.external_ids is not None:
            by_ext = {t.external_id: t for t in self.tracks if t.external_id is not None}
            for d, ext in enumerate(dets.external_ids):
                if d in free and ext in by_ext and not by_ext[ext].seen:
                    self._matched(by_ext[ext], d, f)
                    free.discard(d)
        high = sorted(d for d in free if dets.scores[d] >= p.high_score)
        low = sorted(d for d in free if dets.scores[d] < p.high_score)
        confirmed = [t for t in self.tracks if t.confirmed and not t.seen]
        # Step 2: high-score detections <-> confirmed tracks (tracked or lost), motion + appearance.
        high = self._associate(confirmed, high, f, _Stage(p.match_iou, p.appearance_weight))
        # Step 3: what is left, both boxes enlarged (buffered IoU): a jump, a fall or a bend moves a
        # box further in one frame than the motion model predicts.
        rest = [t for t in confirmed if not t.seen]
        high = self._associate(rest, high, f, _Stage(p.match_iou, p.appearance_weight, p.buffer, Gate.UNLESS_ALONE))
        # Step 4: low-score detections <-> tracks seen a frame ago and still unmatched, IoU only.
        recent = [t for t in confirmed if t.missed == 1]
        self._associate(recent, low, f, _Stage(p.low_match_iou, 0.0))
        # Step 5: re-identification of lost tracks by appearance.
        high = self._reidentify(high, f)
        # Step 6: tentative tracks continue only when matched in consecutive frames.
        tentative = [t for t in self.tracks if not t.confirmed]
        high = self._associate(tentative, high, f, _Stage(p.match_iou, p.appearance_weight, p.buffer, Gate.NONE))
        self.tracks = [t for t in self.tracks if t.confirmed or t.seen]
        for t in self.tracks:
            if not t.confirmed and t.streak >= p.confirm_frames:
                self._confirm(t)
        # Step 7: births from the high-score detections nobody took.
        for d in high:
            mean, cov = BoxKalman.initiate(xywh_to_z(dets.boxes[d]))
            ext = None if dets.external_ids is None else dets.external_ids[d]
            t = Track(None, tuple(float(v) for v in dets.boxes[d]), float(dets.scores[d]), external_id=ext,
                      last_seen_ns=stamp_ns, detection=d, mean=mean, cov=cov, embedding=embs[d])  # fmt: skip
            self.tracks.append(t)
            if ext is not None or p.confirm_frames <= 1:
                self._confirm(t)
        # Step 8: states; tracks lost too long are removed, and never more than max_tracks.
        for t in self.tracks:
            if t.confirmed:
                t.state = TrackState.TRACKED if t.seen else TrackState.LOST
        limit = round(p.lost_seconds * 1e9)
        self.tracks = [t for t in self.tracks if t.seen or stamp_ns - t.last_seen_ns <= limit]
        if len(self.tracks) > p.max_tracks:  # ids churning every frame must not grow memory
            self.tracks = sorted(self.tracks, key=lambda t: (t.missed, -t.hits))[: p.max_tracks]
        return sorted((t for t in self.tracks if t.confirmed), key=lambda t: t.track_id)

    # ------------------------------------------------------------------ steps
    def _predict(self) -> None:
        for t in self.tracks:
            t.age += 1
            t.missed += 1
            t.detection = None
            if t.state is TrackState.LOST:  # the box keeps its size, and the walk fades out (a person
                t.mean[7] = 0.0  # unseen may have stopped or turned; extrapolating for seconds puts
                t.mean[4:6] *= self.params.lost_velocity_decay  # the box where nobody is)
            t.mean, t.cov = BoxKalman.predict(t.mean, t.cov)

    def _confirm(self, t: Track) -> None:
        t.track_id = next(self._ids)
        t.state = TrackState.TRACKED

    def _associate(self, tracks: list[Track], cand: list[int], f: _Frame, stage: _Stage) -> list[int]:
        """Match ``tracks`` to the candidate detections ``cand`` (indices) by IoU of the predicted box
        fused with appearance, within ``stage.gate``; -> the candidates left unmatched."""
        if not tracks or not cand:
            return cand
        boxes = f.dets.boxes[cand]
        predicted = np.array([t.predicted for t in tracks])
        ious = iou_matrix(enlarge(predicted, stage.buffer), enlarge(boxes, stage.buffer))
        allowed = ious >= stage.min_iou
        inside = np.ones_like(allowed)
        if stage.gate is not Gate.NONE:  # the motion model's own uncertainty: no detection it finds implausible
            zs = np.array([xywh_to_z(b) for b in boxes])
            inside = np.array([BoxKalman.gate_distance(t.mean, t.cov, zs) <= GATE_CHI2 for t in tracks])
            # The filter's height uncertainty grows every frame a track is lost, so after a second its
            # gate takes a box of another size; a hidden person keeps theirs (``LOST_SCALE``).
            lost_h = np.array([t.box[3] if t.missed > 1 else np.nan for t in tracks])[:, None]
            ratio = boxes[:, 3][None] / np.maximum(lost_h, 1e-6)
            inside &= np.isnan(lost_h) | ((ratio <= LOST_SCALE) & (ratio >= 1 / LOST_SCALE))
        if stage.gate is Gate.UNLESS_ALONE:
            everyone = np.array([t.predicted for t in self.tracks if t.confirmed]).reshape(-1, 4)
            alone = (iou_matrix(enlarge(everyone, stage.buffer), enlarge(boxes, stage.buffer)) > 0).sum(0) <= 1
            recent = np.array([t.missed == 1 for t in tracks])[:, None]
            allowed &= inside | (recent & alone[None] & _feet_stay(predicted, boxes))
        else:
            allowed &= inside
        cost = 1.0 - ious
        if stage.appearance_weight > 0:
            w = stage.appearance_weight
            embs = [f.embs[d] for d in cand]
            cos = np.array([[cosine(t.embedding, e) for e in embs] for t in tracks])
            known = ~np.isnan(cos)
            if self.params.appearance_gate > -1:  # the descriptors are known to tell persons apart
                allowed &= ~known | (np.nan_to_num(cos) >= self.params.appearance_gate)
                allowed &= ~self._looks_like_someone_else(tracks, embs, cos)
            cost = np.where(known, (1 - w) * cost + w * (1 - np.nan_to_num(cos)), cost)
        # Between near-equal candidates a track seen in the last frame wins over a lost one (a soft
        # matching cascade): a person hidden behind another has a predicted box as close to the
        # front person's detection as that person's own track, and stays hidden until they part.
        lost = np.array([[t.missed - 1] for t in tracks])
        cost = cost + LOST_PENALTY * (lost > 0) + LOST_PENALTY_PER_FRAME * np.minimum(lost, LOST_PENALTY_FRAMES)
        pairs = assign(cost, allowed)
        for r, c in pairs:
            if not inside[r, c]:  # the motion state is stale (see ``Gate.UNLESS_ALONE``)
                tracks[r].mean, tracks[r].cov = BoxKalman.initiate(xywh_to_z(boxes[c]))
            self._matched(tracks[r], cand[c], f)
        used = {cand[c] for _, c in pairs}
        return [d for d in cand if d not in used]

    def _looks_like_someone_else(self, tracks: list[Track], embs: list, cos: np.ndarray) -> np.ndarray:
        """(tracks, detections): does the detection look like another confirmed track (any, lost
        ones too) clearly more than like this one (by ``APPEARANCE_MARGIN``, and enough to be
        re-identified as them)? Such a pair is left alone even when the boxes agree: a person who
        walked on unseen comes out where the motion model does not expect them, next to the
        track of someone else."""
        known = [t for t in self.tracks if t.confirmed and t.embedding is not None]
        out = np.zeros(cos.shape, bool)
        if len(known) < 2:
            return out
        sims = np.array([[np.nan if e is None else float(t.embedding @ e) for e in embs] for t in known])
        row = {id(t): i for i, t in enumerate(known)}
        for r, t in enumerate(tracks):
            others = np.delete(sims, row[id(t)], axis=0) if id(t) in row else sims
            best = np.nanmax(np.where(np.isnan(others), -np.inf, others), axis=0)
            out[r] = (best >= self.params.reid_min_similarity) & (
                np.nan_to_num(cos[r], nan=np.inf) + APPEARANCE_MARGIN <= best
            )
        return out

    def _crowded(self, boxes: np.ndarray) -> np.ndarray:
        """Per detection: does its box overlap another detection or more than one track's predicted
        box (a person behind may be unseen)? Such a crop shows two persons."""
        if len(boxes) == 0:
            return np.zeros(0, bool)
        dets = iou_matrix(boxes, boxes)
        np.fill_diagonal(dets, 0.0)
        predicted = np.array([t.predicted for t in self.tracks if t.confirmed]).reshape(-1, 4)
        tracks = (iou_matrix(predicted, boxes) > CROWDED_IOU).sum(0)
        return (dets.max(1) > CROWDED_IOU) | (tracks > 1)

    def _reidentify(self, cand: list[int], f: _Frame) -> list[int]:
        """Lost tracks <-> high-score detections left over, by appearance, within the distance a
        person walks in the time lost and of a plausible height; -> the candidates left."""
        p = self.params
        lost = [t for t in self.tracks if t.confirmed and not t.seen and t.embedding is not None]
        with_emb = [d for d in cand if f.embs[d] is not None]
        if not lost or not with_emb:
            return cand
        sim = np.array([[float(t.embedding @ f.embs[d]) for d in with_emb] for t in lost])
        allowed = sim >= p.reid_min_similarity
        lo, hi = REID_HEIGHT_RANGE
        for i, t in enumerate(lost):
            x, y, w, h = t.box
            reach = h * (1.0 + p.reid_speed * (f.stamp_ns - t.last_seen_ns) / 1e9)
            for j, d in enumerate(with_emb):
                bx, by, bw, bh = f.dets.boxes[d]
                dist = np.hypot(bx + bw / 2 - x - w / 2, by + bh / 2 - y - h / 2)
                allowed[i, j] &= dist <= reach and lo <= bh / max(h, 1e-6) <= hi
        pairs = assign(1.0 - sim, allowed)
        for r, c in pairs:
            t, d = lost[r], with_emb[c]
            t.mean, t.cov = BoxKalman.initiate(xywh_to_z(f.dets.boxes[d]))  # the old motion state is stale
            self._matched(t, d, f)
        used = {with_emb[c] for _, c in pairs}
        return [d for d in cand if d not in used]

    def _matched(self, t: Track, d: int, f: _Frame) -> None:
        p = self.params
        box, score = f.dets.boxes[d], float(f.dets.scores[d])
        t.streak = t.streak + 1 if t.missed == 1 else 1
        t.mean, t.cov = BoxKalman.update(t.mean, t.cov, xywh_to_z(box))
        t.box, t.score, t.missed, t.detection = tuple(float(v) for v in box), score, 0, d
        t.hits += 1
        t.last_seen_ns = f.stamp_ns
        e = f.embs[d]
        # Weak (often occluded) crops and crops showing two persons do not teach appearance: during a
        # crossing the front person's crop would teach the track behind the other's look.
        if e is not None and score >= p.high_score and not f.crowded[d]:
            m = p.embedding_momentum
            t.embedding = e if t.embedding is None else unit(m * t.embedding + (1 - m) * e)


def _feet_stay(predicted: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """(tracks, detections): is the detection's bottom centre where the person's feet can be a frame
    later, whatever their pose did (``FEET_REACH``)? Falling, bending or jumping changes a box's
    shape, not where the person stands: a box elsewhere is someone or something else (clutter
    beside a person overlaps their enlarged box too)."""
    px, py = predicted[:, 0] + predicted[:, 2] / 2, predicted[:, 1] + predicted[:, 3]
    dx, dy = dets[:, 0] + dets[:, 2] / 2, dets[:, 1] + dets[:, 3]
    h = predicted[:, 3:4]
    return (np.abs(dx[None] - px[:, None]) <= FEET_REACH[0] * h) & (np.abs(dy[None] - py[:, None]) <= FEET_REACH[1] * h)
