"""Person tracking for real footage: identities that last as long as HopaDIFF's windows.

A window is W sampled frames (W=256 at 5 fps is 51 s), so a person's id must survive crossings,
missed detections and occlusions of a few seconds. ``PersonTracker`` is ByteTrack's association
(Zhang et al., ECCV 2022) with appearance re-identification in the manner of BoT-SORT:

1. Motion: a constant-velocity Kalman filter on (centre x, centre y, aspect, height) per track,
   noise proportional to the box height (the SORT/DeepSORT formulation), predicts every box.
   A lost track's predicted velocity fades (``lost_velocity_decay`` per frame): an unseen person
   may have stopped or turned, and seconds of extrapolation put the box where nobody is. The
   filter's height uncertainty grows while a track is lost, so a lost track is also held to its
   last box height (``LOST_SCALE``): a hidden person does not change size.
2. Two-stage association: high-score detections against every confirmed track (IoU with the
   predicted box, fused with appearance cosine distance when embeddings are given, inside the
   filter's Mahalanobis gate on centre and height and, when set, the appearance gate, near-ties
   going to a track seen in the last frame), a second pass with both boxes enlarged for what is left
   (C-BIoU's buffered IoU), where a person alone whose box changed faster than any motion model
   predicts (a fall, a jump, a bend) may also match outside the gate and restarts its motion
   state, then low-score detections against the tracks still unmatched that were seen a frame
   ago (IoU only: a partly occluded person gives a weak detection; ByteTrack's key idea). Every
   assignment may leave a track and a box unmatched rather than take two poor pairs (``assign``).
3. Appearance: each track keeps an exponential average of its detections' appearance
   descriptors (the node passes a colour histogram of the upper body by default, or the features
   the backbone computes for every crop anyway: no extra model runs), taught only by confident
   crops that show one person (a crop overlapping another box would, during a crossing, teach
   the track behind the look of the one in front). A pair less similar than
   ``appearance_gate`` never matches, however well the boxes agree: two persons of one size in
   one lane overlap completely, and motion alone cannot tell who came out on which side. Nor
   does a track then take a detection that looks clearly more like another known person, lost
   or not (``APPEARANCE_MARGIN``): the one who walked on unseen comes out away from their
   prediction. Both only with a gate set: where the features carry no identity (a backbone with
   random weights) they would veto good matches by chance. The default gate is the one measured
   for the node's default descriptor, the colour histogram of the upper body
   (rhas_ros.core.appearance; scripts/bench_tracking.py).
   Re-identification: a high-score detection left over is compared with the lost tracks'
   appearance; above ``reid_min_similarity``, and within a distance a person can walk in the
   time lost, the lost track gets the detection: its id comes back and its buffers continue.
4. Birth and death hysteresis: a new track is tentative until matched in ``confirm_frames``
   consecutive frames (a one-frame false detection never gets an id); a confirmed track that
   is not matched is *lost* and kept (reported with ``missed > 0``, so the streaming buffers
   mask the missing frames) for ``lost_seconds`` of stamp time before it is dropped.

Ids start at 1, are given at confirmation and never reused within a run. Boxes are
(x, y, w, h) pixels. Detections with an upstream id (the ``external`` detector's persons topic)
are matched to the track with that id first and are confirmed at birth: the upstream tracker
already decided they are a person.

Written here rather than taken from a library: ``trackers`` / ``supervision`` (ByteTrack,
BoT-SORT) require opencv-python next to this package's opencv-python-headless (two builds
of cv2 in one environment), PyAV and matplotlib, report only the tracks matched in the
current frame (the buffers need the lost ones too) and take no caller-supplied embeddings;
``filterpy``'s KalmanFilter would add matplotlib for the 20 lines of the filter below.
Assignment uses scipy's ``linear_sum_assignment`` (an exact solver, fast at these sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

TENTATIVE_ID = 0  # track_id of a track not confirmed yet (never reported)
GATE_DIMS = [0, 1, 3]  # centre x, centre y, height
GATE_CHI2 = 11.345  # chi-square 0.99 quantile, 3 degrees of freedom
LOST_PENALTY = 0.05  # association cost added to a lost track (a visible one wins near-ties) ...
LOST_PENALTY_PER_FRAME = 0.02  # ... and per frame it has been lost (at most 10 frames)
CROWDED_IOU = 0.1  # a crop overlapping another box more than this shows two persons
LOST_SCALE = 1.3  # a lost track matches (by motion) only boxes within this factor of its last height
FEET_REACH = (0.6, 0.3)  # a box matched outside the motion gate: its bottom centre moved at most this (x, y) x height
APPEARANCE_MARGIN = 0.1  # a detection looking this much more like another known person is not this one's


@dataclass
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


class BoxKalman:
    """Constant-velocity Kalman filter on z = (cx, cy, aspect w/h, h), state (z, dz/dt) per frame;
    position and velocity noise scale with the box height."""

    POS, VEL = 1.0 / 20, 1.0 / 160
    F = np.eye(8) + np.eye(8, k=4)
    H = np.eye(4, 8)

    @classmethod
    def initiate(cls, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = z[3]
        std = [2 * cls.POS * h, 2 * cls.POS * h, 1e-2, 2 * cls.POS * h,
               10 * cls.VEL * h, 10 * cls.VEL * h, 1e-5, 10 * cls.VEL * h]  # fmt: skip
        return np.r_[z, np.zeros(4)], np.diag(np.square(std))

    @classmethod
    def predict(cls, mean, cov):
        h = mean[3]
        q = np.square([cls.POS * h, cls.POS * h, 1e-2, cls.POS * h, cls.VEL * h, cls.VEL * h, 1e-5, cls.VEL * h])
        return cls.F @ mean, cls.F @ cov @ cls.F.T + np.diag(q)

    @classmethod
    def gate_distance(cls, mean, cov, zs: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of measurements zs (M, 4) from the predicted measurement, on
        centre and height (the aspect of a walking person's box swings too much to gate on)."""
        h = mean[3]
        r = np.square([cls.POS * h, cls.POS * h, 1e-1, cls.POS * h])
        s = (cls.H @ cov @ cls.H.T + np.diag(r))[np.ix_(GATE_DIMS, GATE_DIMS)]
        d = zs[:, GATE_DIMS] - mean[GATE_DIMS]
        return np.einsum("mi,ij,mj->m", d, np.linalg.inv(s), d)

    @classmethod
    def update(cls, mean, cov, z):
        h = mean[3]
        r = np.diag(np.square([cls.POS * h, cls.POS * h, 1e-1, cls.POS * h]))
        s = cls.H @ cov @ cls.H.T + r
        gain = np.linalg.solve(s, cls.H @ cov).T  # cov H^T S^-1 (S and cov symmetric)
        return mean + gain @ (z - cls.H @ mean), cov - gain @ s @ gain.T


def xywh_to_z(b) -> np.ndarray:
    x, y, w, h = (float(v) for v in b)
    return np.array([x + w / 2, y + h / 2, w / max(h, 1e-6), h])


def z_to_xywh(z) -> tuple[float, float, float, float]:
    cx, cy, a, h = (float(v) for v in z[:4])
    h = max(h, 1e-3)
    w = max(a, 1e-3) * h
    return (cx - w / 2, cy - h / 2, w, h)


@dataclass
class Track:
    track_id: int
    box: tuple[float, float, float, float]  # last matched box (the predicted one is ``predicted``)
    score: float
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
        return self.track_id != TENTATIVE_ID

    @property
    def predicted(self) -> tuple[float, float, float, float]:
        return z_to_xywh(self.mean)


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


def enlarge(b: np.ndarray, buffer: float) -> np.ndarray:
    """xywh boxes grown by ``buffer`` times their width/height on every side."""
    if buffer == 0:
        return b
    return np.c_[b[:, 0] - buffer * b[:, 2], b[:, 1] - buffer * b[:, 3], b[:, 2:] * (1 + 2 * buffer)]


def assign(cost: np.ndarray, allowed: np.ndarray, unmatched_cost: float = 0.5) -> list[tuple[int, int]]:
    """Minimum-cost matching restricted to the allowed pairs, where leaving a row or a column
    unmatched costs ``unmatched_cost`` -> [(row, col)]. Plain rectangular assignment maximises the
    number of pairs first: two poor pairs beat one good pair and two leftovers (a lost track takes
    another person's box so that its own is matched by the wrong track). Padding the matrix with
    the cost of staying unmatched makes a pair worth taking only if it beats that."""
    n, m = cost.shape
    if n == 0 or m == 0 or not allowed.any():
        return []
    big = 1e6
    full = np.full((n + m, m + n), big)
    full[:n, :m] = np.where(allowed, cost, big)
    full[:n, m:][np.diag_indices(n)] = unmatched_cost  # row r left unmatched
    full[n:, :m][np.diag_indices(m)] = unmatched_cost  # column c left unmatched
    full[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(full)
    return [(r, c) for r, c in zip(rows, cols, strict=True) if r < n and c < m and allowed[r, c]]


def unit(v) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    n = np.linalg.norm(v)
    return v / n if n > 0 and np.isfinite(n) else None


class PersonTracker:
    def __init__(self, params: TrackerParams | None = None):
        self.params = params or TrackerParams()
        self.tracks: list[Track] = []
        self._next_id = 1
        self._crowded = np.zeros(0, bool)  # per detection of the current frame (``_crowded_detections``)

    def reset(self) -> None:
        """Forget every track; ids keep counting (an id is never reused within a run, even across a
        bag loop: a consumer's history of person 1 must not continue with someone else)."""
        self.tracks = []

    def update(self, boxes, scores=None, external_ids=None, embeddings=None, stamp_ns: int = 0) -> list[Track]:
        """One sampled frame of detections -> the confirmed tracks: matched in this frame
        (``missed == 0``, ``detection`` = the index of their box) or lost for at most
        ``lost_seconds`` (``missed > 0``). ``embeddings``: one appearance vector per detection
        (or None); ``stamp_ns``: the frame's time (how long a track has been lost)."""
        p = self.params
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        scores = np.ones(n) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        embs = [None] * n if embeddings is None else [unit(e) for e in embeddings]
        for t in self.tracks:
            t.age += 1
            t.missed += 1
            t.detection = None
            if t.missed > 1:  # lost: the box keeps its size, and the walk fades out (a person
                t.mean[7] = 0.0  # unseen may have stopped or turned; extrapolating for seconds
                t.mean[4:6] *= self.params.lost_velocity_decay  # puts the box where nobody is)
            t.mean, t.cov = BoxKalman.predict(t.mean, t.cov)
        free = set(np.flatnonzero(scores >= p.low_score).tolist())
        self._crowded = self._crowded_detections(boxes)

        if external_ids is not None:  # an upstream tracker's ids are trusted first
            by_ext = {t.external_id: t for t in self.tracks if t.external_id is not None}
            for d, ext in enumerate(external_ids):
                if d in free and ext in by_ext and by_ext[ext].missed > 0:
                    self._matched(by_ext[ext], d, boxes, scores, embs, stamp_ns)
                    free.discard(d)

        high = sorted(d for d in free if scores[d] >= p.high_score)
        low = sorted(d for d in free if scores[d] < p.high_score)
        confirmed = [t for t in self.tracks if t.confirmed and t.missed > 0]

        # Stage 1: high-score detections <-> confirmed tracks (tracked or lost), motion + appearance,
        # within the motion model's gate.
        used = self._stage(confirmed, high, boxes, scores, embs, stamp_ns, p.match_iou, p.appearance_weight)
        high = [d for d in high if d not in used]
        # Stage 1b: what is left, with both boxes enlarged (buffered IoU, as C-BIoU): a jump, a fall
        # or a bend moves a box further in one frame than the motion model predicts.
        rest = [t for t in confirmed if t.missed > 0]
        used = self._stage(
            rest, high, boxes, scores, embs, stamp_ns, p.match_iou, p.appearance_weight, p.buffer, gate="unless-alone"
        )
        high = [d for d in high if d not in used]
        # Stage 2: low-score detections <-> tracks seen a frame ago and still unmatched, IoU only.
        recent = [t for t in confirmed if t.missed == 1]
        self._stage(recent, low, boxes, scores, embs, stamp_ns, p.low_match_iou, 0.0)
        # Stage 3: re-identification of lost tracks by appearance.
        high = [d for d in high if d not in self._reidentify(high, boxes, scores, embs, stamp_ns)]
        # Tentative tracks continue only when matched in consecutive frames.
        tentative = [t for t in self.tracks if not t.confirmed]
        used = self._stage(
            tentative, high, boxes, scores, embs, stamp_ns, p.match_iou, p.appearance_weight, p.buffer, gate="none"
        )
        high = [d for d in high if d not in used]
        self.tracks = [t for t in self.tracks if t.confirmed or t.missed == 0]
        for t in self.tracks:
            if not t.confirmed and t.streak >= p.confirm_frames:
                self._confirm(t)
        for d in high:  # births
            mean, cov = BoxKalman.initiate(xywh_to_z(boxes[d]))
            ext = None if external_ids is None else external_ids[d]
            t = Track(TENTATIVE_ID, tuple(float(v) for v in boxes[d]), float(scores[d]), external_id=ext,
                      last_seen_ns=stamp_ns, detection=d, mean=mean, cov=cov, embedding=embs[d])  # fmt: skip
            self.tracks.append(t)
            if ext is not None or p.confirm_frames <= 1:
                self._confirm(t)

        limit = round(p.lost_seconds * 1e9)
        self.tracks = [t for t in self.tracks if t.missed == 0 or stamp_ns - t.last_seen_ns <= limit]
        if len(self.tracks) > p.max_tracks:  # ids churning every frame must not grow memory
            self.tracks = sorted(self.tracks, key=lambda t: (t.missed, -t.hits))[: p.max_tracks]
        return sorted((t for t in self.tracks if t.confirmed), key=lambda t: t.track_id)

    # ------------------------------------------------------------------ internals
    def _confirm(self, t: Track) -> None:
        t.track_id = self._next_id
        self._next_id += 1

    def _stage(
        self, tracks, dets, boxes, scores, embs, stamp_ns, min_iou, w_app, buffer=0.0, gate="motion"
    ) -> set[int]:
        """Match ``tracks`` to detections ``dets`` (indices) by IoU of the predicted box (both boxes
        grown by ``buffer``) fused with appearance (weight ``w_app``; 0: IoU only), and return the
        detections used. ``gate``: "motion" allows only pairs inside the Kalman gate; "none" any;
        "unless-alone" also a pair outside it when the track was seen a frame ago and the detection
        overlaps no other track (a person alone who falls, jumps or bends: the box changes faster
        than any motion model predicts; the track's motion state then restarts from the box)."""
        if not tracks or not dets:
            return set()
        predicted = np.array([t.predicted for t in tracks])
        ious = iou_matrix(enlarge(predicted, buffer), enlarge(boxes[dets], buffer))
        allowed = ious >= min_iou
        inside = np.ones_like(allowed)
        if gate != "none":  # the motion model's own uncertainty: no detection it finds implausible
            zs = np.array([xywh_to_z(boxes[d]) for d in dets])
            inside = np.array([BoxKalman.gate_distance(t.mean, t.cov, zs) <= GATE_CHI2 for t in tracks])
            # The filter's height uncertainty grows every frame a track is lost, so after a second its
            # gate takes a box of another size; a hidden person keeps theirs (``LOST_SCALE``).
            lost_h = np.array([t.box[3] if t.missed > 1 else np.nan for t in tracks])[:, None]
            ratio = boxes[dets][:, 3][None] / np.maximum(lost_h, 1e-6)
            inside &= np.isnan(lost_h) | ((ratio <= LOST_SCALE) & (ratio >= 1 / LOST_SCALE))
        if gate == "unless-alone":
            everyone = np.array([t.predicted for t in self.tracks if t.confirmed]).reshape(-1, 4)
            alone = (iou_matrix(enlarge(everyone, buffer), enlarge(boxes[dets], buffer)) > 0).sum(0) <= 1
            seen = np.array([t.missed == 1 for t in tracks])[:, None]
            allowed &= inside | (seen & alone[None] & self._feet_stay(predicted, boxes[dets]))
        else:
            allowed &= inside
        cost = 1.0 - ious
        if w_app > 0:
            cos = np.array([[self._cosine(t.embedding, embs[d]) for d in dets] for t in tracks])
            known = ~np.isnan(cos)
            if self.params.appearance_gate > -1:  # the features are known to tell persons apart
                allowed &= ~known | (np.nan_to_num(cos) >= self.params.appearance_gate)
                allowed &= ~self._looks_like_someone_else(tracks, [embs[d] for d in dets], cos)
            cost = np.where(known, (1 - w_app) * cost + w_app * (1 - np.nan_to_num(cos)), cost)
        # Between near-equal candidates a track seen in the last frame wins over a lost one (a soft
        # matching cascade): a person hidden behind another has a predicted box as close to the
        # front person's detection as that person's own track, and stays hidden until they part.
        lost = np.array([[t.missed - 1] for t in tracks])
        cost = cost + LOST_PENALTY * (lost > 0) + LOST_PENALTY_PER_FRAME * np.minimum(lost, 10)
        pairs = assign(cost, allowed)
        for r, c in pairs:
            if not inside[r, c]:  # the motion state is stale (see ``gate``)
                tracks[r].mean, tracks[r].cov = BoxKalman.initiate(xywh_to_z(boxes[dets[c]]))
            self._matched(tracks[r], dets[c], boxes, scores, embs, stamp_ns)
        return {dets[c] for _, c in pairs}

    @staticmethod
    def _feet_stay(predicted: np.ndarray, dets: np.ndarray) -> np.ndarray:
        """(tracks, detections): is the detection's bottom centre where the person's feet can be a
        frame later, whatever their pose did (``FEET_REACH``)? Falling, bending or jumping changes
        a box's shape, not where the person stands: a box elsewhere is someone or something else
        (clutter beside a person overlaps their enlarged box too)."""
        px, py = predicted[:, 0] + predicted[:, 2] / 2, predicted[:, 1] + predicted[:, 3]
        dx, dy = dets[:, 0] + dets[:, 2] / 2, dets[:, 1] + dets[:, 3]
        h = predicted[:, 3:4]
        return (np.abs(dx[None] - px[:, None]) <= FEET_REACH[0] * h) & (
            np.abs(dy[None] - py[:, None]) <= FEET_REACH[1] * h
        )

    def _looks_like_someone_else(self, tracks, embs, cos) -> np.ndarray:
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

    def _crowded_detections(self, boxes: np.ndarray) -> np.ndarray:
        """Per detection: does its box overlap another detection or more than one track's predicted
        box (a person behind may be unseen)? Such a crop shows two persons."""
        n = len(boxes)
        if n == 0:
            return np.zeros(0, bool)
        dets = iou_matrix(boxes, boxes)
        np.fill_diagonal(dets, 0.0)
        predicted = np.array([t.predicted for t in self.tracks if t.confirmed]).reshape(-1, 4)
        tracks = (iou_matrix(predicted, boxes) > CROWDED_IOU).sum(0)
        return (dets.max(1) > CROWDED_IOU) | (tracks > 1)

    def _reidentify(self, dets, boxes, scores, embs, stamp_ns) -> set[int]:
        p = self.params
        lost = [t for t in self.tracks if t.confirmed and t.missed > 0 and t.embedding is not None]
        dets = [d for d in dets if embs[d] is not None]
        if not lost or not dets:
            return set()
        sim = np.array([[float(t.embedding @ embs[d]) for d in dets] for t in lost])
        allowed = sim >= p.reid_min_similarity
        for i, t in enumerate(lost):
            x, y, w, h = t.box
            reach = h * (1.0 + p.reid_speed * (stamp_ns - t.last_seen_ns) / 1e9)
            for j, d in enumerate(dets):
                bx, by, bw, bh = boxes[d]
                dist = np.hypot(bx + bw / 2 - x - w / 2, by + bh / 2 - y - h / 2)
                allowed[i, j] &= dist <= reach and 0.67 <= bh / max(h, 1e-6) <= 1.5
        pairs = assign(1.0 - sim, allowed)
        for r, c in pairs:
            t = lost[r]
            t.mean, t.cov = BoxKalman.initiate(xywh_to_z(boxes[dets[c]]))  # the old motion state is stale
            self._matched(t, dets[c], boxes, scores, embs, stamp_ns)
        return {dets[c] for _, c in pairs}

    @staticmethod
    def _cosine(a, b) -> float:
        return float("nan") if a is None or b is None else float(a @ b)

    def _matched(self, t: Track, d: int, boxes, scores, embs, stamp_ns) -> None:
        p = self.params
        t.streak = t.streak + 1 if t.missed == 1 else 1
        t.mean, t.cov = BoxKalman.update(t.mean, t.cov, xywh_to_z(boxes[d]))
        t.box, t.score, t.missed, t.detection = tuple(float(v) for v in boxes[d]), float(scores[d]), 0, d
        t.hits += 1
        t.last_seen_ns = stamp_ns
        e = embs[d]
        # Weak (often occluded) crops and crops showing two persons do not teach appearance: during a
        # crossing the front person's crop would teach the track behind the other's look.
        if e is not None and scores[d] >= p.high_score and not self._crowded[d]:
            m = p.embedding_momentum
            t.embedding = e if t.embedding is None else unit(m * t.embedding + (1 - m) * e)
