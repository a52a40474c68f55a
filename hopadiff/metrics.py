"""Segmentation metrics.

Standard definitions (MS-TCN, Farha & Gall 2019; ASFormer; DiffAct):
  - frame accuracy: correct frames / all frames, summed over all videos;
  - Edit: 100 * (1 - Levenshtein(segment labels of pred, of gt) / max(#segments)), averaged
    over videos; segments of ``background`` classes are dropped first;
  - F1@k: a predicted segment is a true positive when its IoU with the best-matching
    ground-truth segment of the same class is >= k/100 and that ground-truth segment was not
    matched before (one match per ground-truth segment); tp/fp/fn are summed over all videos.
Multi-label (RHAS133): the paper-comparable top-1 hit accuracy, frame-level mAP, and
Edit/F1 per class on each class's binary activity sequence (inactive = background),
micro-summed over classes.

``official_compat_scores`` reproduces the authors' evaluation script, which inflates the
numbers; it exists only to compare with the paper's tables and is never the default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

OVERLAPS = (0.10, 0.25, 0.50)


def segments(labels: np.ndarray, background: Iterable[int] | None = None) -> list[tuple[int, int, int]]:
    """Runs of equal labels as (label, start, end_exclusive), background runs removed."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size]])
    bg = set(background or ())
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True) if int(labels[s]) not in bg]


def levenshtein(a: Sequence, b: Sequence) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def edit_score(pred_segs, gt_segs) -> float:
    p, g = [s[0] for s in pred_segs], [s[0] for s in gt_segs]
    if not p and not g:
        return 100.0
    return (1 - levenshtein(p, g) / max(len(p), len(g))) * 100


def match_counts(pred_segs, gt_segs, overlap: float) -> tuple[int, int, int]:
    """(tp, fp, fn) with one match per ground-truth segment."""
    used = [False] * len(gt_segs)
    tp = fp = 0
    for label, ps, pe in pred_segs:
        best, best_j = 0.0, -1
        for j, (gl, gs, ge) in enumerate(gt_segs):
            if gl != label:
                continue
            inter = max(0, min(pe, ge) - max(ps, gs))
            union = max(pe, ge) - min(ps, gs)
            iou = inter / union if union > 0 else 0.0
            if iou > best:
                best, best_j = iou, j
        if best >= overlap and not used[best_j]:
            tp += 1
            used[best_j] = True
        else:
            fp += 1
    return tp, fp, len(gt_segs) - sum(used)


def _add_counts(counts: dict, pred_segs, gt_segs) -> None:
    """Accumulate tp/fp/fn at every overlap threshold (summed over videos and classes)."""
    for k in OVERLAPS:
        for i, n in enumerate(match_counts(pred_segs, gt_segs, k)):
            counts[k][i] += n


def _f1(tp: int, fp: int, fn: int) -> float:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return 200 * precision * recall / (precision + recall) if precision + recall else 0.0


def segmentation_scores(predictions, labels, background: Iterable[int] | None = None) -> dict[str, float]:
    """predictions, labels: lists of 1-D int arrays (one per video) -> acc, edit, f1@{10,25,50} (%)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} label sequences")
    if not labels:
        raise ValueError("no videos to score")
    bg = list(background or ())
    correct = total = 0
    edits = []
    counts = {k: [0, 0, 0] for k in OVERLAPS}
    for i, (p, g) in enumerate(zip(predictions, labels, strict=True)):
        p, g = np.asarray(p), np.asarray(g)
        if p.shape != g.shape or p.ndim != 1:
            raise ValueError(f"video {i}: prediction shape {p.shape} != label shape {g.shape} (need 1-D)")
        correct += int((p == g).sum())
        total += g.size
        ps, gs = segments(p, bg), segments(g, bg)
        edits.append(edit_score(ps, gs))
        _add_counts(counts, ps, gs)
    out = {"acc": 100.0 * correct / max(total, 1), "edit": float(np.mean(edits))}
    for k in OVERLAPS:
        out[f"f1@{round(k * 100)}"] = _f1(*counts[k])
    return out


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """AP of one class: mean precision at the rank of each positive (ties broken by order)."""
    order = np.argsort(-scores, kind="stable")
    hits = targets[order].astype(bool)
    if not hits.any():
        return float("nan")
    precision_at = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision_at[hits].mean())


def multilabel_scores(probabilities, labels, threshold: float = 0.5) -> dict[str, float]:
    """probabilities, labels: lists of (C, T) arrays (probabilities in [0,1], multi-hot labels).

    acc: top-1 hit accuracy (the top-scoring class is in the frame's ground-truth set), over
    frames that have at least one ground-truth class (the paper's Acc);
    map: frame-level mean average precision over classes with at least one positive frame;
    edit, f1@k: per class on binary activity sequences (prob >= threshold), inactive frames
    as background; Edit averaged over (video, class) pairs where either side is active,
    F1 tp/fp/fn micro-summed over classes and videos.
    """
    if len(probabilities) != len(labels) or not labels:
        raise ValueError(f"{len(probabilities)} probability arrays for {len(labels)} label arrays")
    hits = frames = 0
    edits = []
    counts = {k: [0, 0, 0] for k in OVERLAPS}
    for i, (p, y) in enumerate(zip(probabilities, labels, strict=True)):
        p, y = np.asarray(p, dtype=np.float64), np.asarray(y) > 0.5
        if p.shape != y.shape or p.ndim != 2:
            raise ValueError(f"video {i}: probabilities {p.shape} != labels {y.shape} (need (C, T))")
        labelled = y.any(axis=0)
        top = p.argmax(axis=0)
        hits += int(y[top, np.arange(y.shape[1])][labelled].sum())
        frames += int(labelled.sum())
        pred = p >= threshold
        for c in range(y.shape[0]):
            ps, gs = segments(pred[c].astype(int), [0]), segments(y[c].astype(int), [0])
            if ps or gs:
                edits.append(edit_score(ps, gs))
            _add_counts(counts, ps, gs)
    all_p = np.concatenate([np.asarray(p) for p in probabilities], axis=1)
    all_y = np.concatenate([np.asarray(y) > 0.5 for y in labels], axis=1)
    aps = [average_precision(all_p[c], all_y[c]) for c in range(all_y.shape[0]) if all_y[c].any()]
    out = {
        "acc": 100.0 * hits / max(frames, 1),
        "map": 100.0 * float(np.mean(aps)) if aps else float("nan"),
        "edit": float(np.mean(edits)) if edits else 100.0,
    }
    for k in OVERLAPS:
        out[f"f1@{round(k * 100)}"] = _f1(*counts[k])
    return out


def per_class_report(probabilities, labels, names: Sequence[str], threshold: float = 0.5) -> list[dict]:
    """One row per class: support (frames), AP, F1@25 on the class's binary sequence."""
    rows = []
    all_p = np.concatenate([np.asarray(p) for p in probabilities], axis=1)
    all_y = np.concatenate([np.asarray(y) > 0.5 for y in labels], axis=1)
    for c, name in enumerate(names):
        tp = fp = fn = 0
        for p, y in zip(probabilities, labels, strict=True):
            ps = segments((np.asarray(p[c]) >= threshold).astype(int), [0])
            gs = segments((np.asarray(y[c]) > 0.5).astype(int), [0])
            a, b, d = match_counts(ps, gs, 0.25)
            tp, fp, fn = tp + a, fp + b, fn + d
        rows.append(
            {
                "class_id": c,
                "label": name,
                "support_frames": int(all_y[c].sum()),
                "ap": 100 * average_precision(all_p[c], all_y[c]),
                "f1@25": _f1(tp, fp, fn),
                "gt_segments": tp + fn,
                "pred_segments": tp + fp,
            }
        )
    return rows


# --------------------------------------------------------------------------------------
# Compatibility with the authors' evaluation script (INFLATED; for paper comparison only).
# --------------------------------------------------------------------------------------
def _compat_segments(frames: np.ndarray) -> list[tuple[tuple, int, int]]:
    """Segments from raw per-frame float vectors: a new segment whenever the vector changes."""
    out, start = [], 0
    for t in range(1, len(frames) + 1):
        if t == len(frames) or not np.array_equal(frames[t], frames[start]):
            out.append((tuple(np.round(frames[start], 6)), start, t))
            start = t
    return out


def official_compat_scores(probabilities, labels) -> dict[str, float]:
    """Reproduces the authors' script's behaviour. NOT a correct metric:
    - segments are built from raw float vectors (C-dim probabilities / multi-hot rows);
    - intersection is |min(end) - max(start)|, positive even for disjoint segments;
    - no one-match-per-segment rule: one ground-truth segment can be matched many times;
    - Edit is summed over videos and divided by 2 instead of the number of videos.
    Accuracy is the top-1 hit accuracy. Labelled "official-compat (inflated)" wherever shown.
    """
    hits = frames = 0
    edit_sum = 0.0
    counts = {k: [0, 0, 0] for k in OVERLAPS}
    for p, y in zip(probabilities, labels, strict=True):
        p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
        top = p.argmax(axis=0)
        hits += int((y[top, np.arange(y.shape[1])] > 0.5).sum())
        frames += y.shape[1]
        ps, gs = _compat_segments(p.T), _compat_segments(y.T)
        pl = [int(np.argmax(s[0])) for s in ps]
        gl = [int(np.argmax(s[0])) for s in gs]
        edit_sum += (1 - levenshtein(pl, gl) / max(len(pl), len(gl), 1)) * 100
        for k in OVERLAPS:
            tp = fp = 0
            for (lab, s, e), pc in zip(ps, pl, strict=True):
                del lab
                ious = [
                    abs(min(e, ge) - max(s, gs_)) / (max(e, ge) - min(s, gs_))
                    for (_, gs_, ge), gc in zip(gs, gl, strict=True)
                    if gc == pc
                ]
                if ious and max(ious) >= k:
                    tp += 1
                else:
                    fp += 1
            counts[k][0] += tp
            counts[k][1] += fp
            counts[k][2] += max(len(gs) - tp, 0)
    out = {"acc": 100.0 * hits / max(frames, 1), "edit": edit_sum / 2}
    for k in OVERLAPS:
        out[f"f1@{round(k * 100)}"] = _f1(*counts[k])
    return out
