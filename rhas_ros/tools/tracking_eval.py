"""Identity metrics for the tracker against ground truth, and detections simulated from it.

``identity_errors`` counts what HopaDIFF's windows suffer from, in the CLEAR-MOT sense
(Bernardin & Stiefelhagen 2008): per frame, ground-truth boxes are matched one-to-one to the
tracker's boxes (IoU >= 0.5; a person keeps last frame's track while it still overlaps that
much, the others by optimal assignment); an *ID switch* is a ground-truth person matched
to another track id than at their previous matched frame, a *fragmentation* a person's
trajectory that was matched, then not, then matched again. A person the detector misses is
*held* (neither) while the tracker still reports their track as lost: the node keeps that
person's buffer, which is what a window needs.

``simulated_detections`` turns the ground-truth boxes of hopadiff-synth --video clips (persons
walking across each other) into what a detector gives: jitter, random misses, no box for the
person behind while two overlap, and now and then a false box for one frame (background clutter,
away from the persons). ``SimulatedAppearance`` gives each detection the crop embedding a
backbone of a chosen quality would: a fixed direction per person (``across``: the cosine between
two persons' directions), per-frame noise (``within``: the cosine of a crop with its person's
direction), crops showing two persons mixed by their overlap, and false boxes random.
``ColorAppearance`` gives the real colour descriptors of the rendered pixels instead.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from rhas_ros.core.appearance import color_descriptors
from rhas_ros.core.tracking import Detections, iou_matrix

Box = tuple[float, float, float, float]


def identity_errors(truth: list[dict[int, Box]], tracked: list[dict[int, Box | None]], min_iou: float = 0.5) -> dict:
    """truth: per frame, person id -> box (xywh); tracked: per frame, track id -> box, or None for
    a track reported but not seen in that frame (lost: the node keeps its buffer). -> id_switches,
    fragmentations, coverage (the share of ground-truth boxes matched or held by their lost
    track) and the track ids each person was given."""
    last_id: dict[int, int] = {}
    on: dict[int, bool] = {}  # person -> matched or held in the previous frame they were present
    switches = fragments = present = covered = 0
    given: dict[int, set[int]] = {}
    for gt, hyp in zip(truth, tracked, strict=True):
        boxed = {h: b for h, b in hyp.items() if b is not None}
        # CLEAR-MOT's rule: a correspondence of the previous frame is kept while it still overlaps
        # enough; the rest are matched by optimal assignment.
        pairs = {}
        for g, h in last_id.items():
            kept = on.get(g) and g in gt and h in boxed and h not in pairs.values()
            if kept and iou_matrix(np.array([gt[g]]), np.array([boxed[h]]))[0, 0] >= min_iou:
                pairs[g] = h
        g_ids = [g for g in gt if g not in pairs]
        h_ids = [h for h in boxed if h not in pairs.values()]
        ious = iou_matrix(
            np.array([gt[i] for i in g_ids]).reshape(-1, 4), np.array([boxed[i] for i in h_ids]).reshape(-1, 4)
        )
        if ious.size:
            rows, cols = linear_sum_assignment(-ious)
            pairs |= {g_ids[r]: h_ids[c] for r, c in zip(rows, cols, strict=True) if ious[r, c] >= min_iou}
        for g in gt:  # a person unseen by the tracker is held while their track is reported lost
            h = last_id.get(g)
            if g not in pairs and on.get(g) and h in hyp and hyp[h] is None and h not in pairs.values():
                pairs[g] = h
        for g in gt:
            present += 1
            h = pairs.get(g)
            if h is None:
                if on.get(g):
                    on[g] = False
                continue
            covered += 1
            given.setdefault(g, set()).add(h)
            if g in last_id and last_id[g] != h:
                switches += 1
            if g in on and not on[g]:
                fragments += 1
            last_id[g], on[g] = h, True
    return {
        "id_switches": switches,
        "fragmentations": fragments,
        "coverage": covered / max(present, 1),
        "ids": {g: sorted(v) for g, v in given.items()},
    }


def clip_truth(video: dict) -> list[dict[int, Box]]:
    """Per frame, person id -> box of one video of an extract manifest (hopadiff-synth --video)."""
    return [
        {p["person_id"]: tuple(p["boxes"][f]) for p in video["persons"] if p["boxes"][f]}
        for f in range(video["frames"])
    ]


def track_clip(tracker, truth: list[dict[int, Box]], detections, fps: float, appearance=None) -> dict:
    """Run ``tracker`` over per-frame (boxes, scores) ``detections`` (with ``appearance(k, boxes)``
    embeddings of frame k when given) and score it against ``truth`` (``identity_errors``)."""
    tracked = []
    for k, (boxes, scores) in enumerate(detections):
        embs = appearance(k, boxes) if appearance else None
        tracks = tracker.update(Detections.of(boxes, scores, embeddings=embs), round(k * 1e9 / fps))
        tracked.append({t.track_id: t.box if t.seen else None for t in tracks})
    return identity_errors(truth, tracked)


def crossings(truth: list[dict[int, Box]]) -> int:
    """How many times two persons' left-to-right order flips (they pass each other)."""
    n = 0
    prev = None
    for gt in truth:
        order = tuple(sorted(gt, key=lambda i: gt[i][0] + gt[i][2] / 2))
        if prev is not None and len(order) == len(prev):
            n += sum(1 for a in range(len(order)) if order[a] != prev[a]) // 2
        prev = order
    return n


def simulated_detections(truth: list[dict[int, Box]], rng: np.random.Generator, miss: float = 0.1,
                         jitter: float = 0.02, false_rate: float = 0.05, size=(320, 240)):  # fmt: skip
    """Per frame (boxes (N, 4), scores (N,)) from ground truth. A person whose box overlaps a
    later-drawn person's (drawn on top) by IoU > 0.3 is not detected; misses at rate ``miss``;
    box jitter in units of the box size (x and width: its width, y and height: its height); a
    false box for one frame at rate ``false_rate``, away from every person."""
    frames = []
    for gt in truth:
        ids = list(gt)
        boxes = np.array([gt[i] for i in ids], dtype=np.float64).reshape(-1, 4)
        ious = iou_matrix(boxes, boxes)
        keep = []
        for a in range(len(ids)):
            hidden = any(ious[a, b] > 0.3 for b in range(a + 1, len(ids)))
            if not hidden and rng.random() >= miss:
                keep.append(a)
        out = boxes[keep].copy()
        if len(out):
            out += rng.normal(0, jitter, size=out.shape) * out[:, [2, 3, 2, 3]]
        scores = rng.uniform(0.6, 1.0, size=len(out))
        if rng.random() < false_rate:
            w, h = size
            fh = rng.uniform(0.3, 0.5) * h
            false = np.array([[rng.uniform(0, w - fh / 2), rng.uniform(0, h - fh), fh / 2, fh]])
            if not len(boxes) or iou_matrix(false, boxes).max() < 0.1:  # clutter, not a second box on someone
                out = np.vstack([out, false])
                scores = np.r_[scores, rng.uniform(0.5, 0.9)]
        frames.append((out, scores))
    return frames


class ColorAppearance:
    """The colour descriptors (rhas_ros.core.appearance) of the detections in a clip's frames: what
    the node's default ``reid_appearance: color`` gives the tracker, from the rendered pixels."""

    def __init__(self, frames: list[np.ndarray]):
        self.frames = frames

    def __call__(self, k: int, boxes: np.ndarray) -> list[np.ndarray | None]:
        return color_descriptors(self.frames[k], boxes)


class SimulatedAppearance:
    """Crop embeddings of a chosen quality for simulated detections (see the module docstring)."""

    def __init__(self, truth: list[dict[int, Box]], across: float, within: float = 0.9, dim: int = 64, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.truth, self.within, self.dim = truth, within, dim
        shared = self._unit(self.rng.normal(size=dim))
        self.direction = {p: self._mix(shared, across) for p in dict.fromkeys(p for gt in truth for p in gt)}

    @staticmethod
    def _unit(v):
        return v / np.linalg.norm(v)

    def _mix(self, v, cosine):
        """A unit vector whose cosine with unit ``v`` is ``cosine``, otherwise random."""
        u = self.rng.normal(size=self.dim)
        u = self._unit(u - (u @ v) * v)
        return np.sqrt(cosine) * v + np.sqrt(1 - cosine) * u if cosine < 1 else v

    def __call__(self, k: int, boxes: np.ndarray) -> list[np.ndarray]:
        """One embedding per detection box of frame ``k``."""
        truth = self.truth[k]
        ids = list(truth)
        gt = np.array([truth[i] for i in ids], dtype=np.float64).reshape(-1, 4)
        out = []
        for box in np.asarray(boxes).reshape(-1, 4):
            overlap = iou_matrix(box[None], gt)[0] if len(gt) else np.zeros(0)
            if not len(overlap) or overlap.max() < 0.3:  # a false box: background
                out.append(self._unit(self.rng.normal(size=self.dim)))
                continue
            shown = sum(o * self.direction[ids[i]] for i, o in enumerate(overlap) if o >= 0.2)
            out.append(self._mix(self._unit(shown), self.within))
        return out
