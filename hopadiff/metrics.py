"""Segmentation metrics.

Standard definitions (MS-TCN, Farha & Gall 2019; ASFormer; DiffAct):
  - frame accuracy: correct frames / all frames, summed over all videos;
  - Edit: 100 * (1 - Levenshtein(segment labels of pred, of gt) / max(#segments)), averaged
    over videos; segments of ``background`` classes are dropped first;
  - F1@k: a predicted segment is a true positive when its IoU with the best-matching
    ground-truth segment of the same class is >= k/100 and that ground-truth segment was not
    matched before (one match per ground-truth segment); tp/fp/fn are summed over all videos.

Segment extraction follows the reference code exactly, including its quirk: the reference
``get_labels_start_end_time`` closes the LAST segment of every sequence at T-1 (it appends the
loop variable ``i = T-1`` as the exclusive end), so that segment is one frame short. Published
MS-TCN/ASFormer/DiffAct/HopaDIFF tables include it (it matters for short sequences), so it is the
default here; ``exact_final_segment=True`` gives the variant whose last segment ends at T. The
only intended departures from the reference: a video with no ground-truth segment (the reference
raises on it) scores every predicted segment as a false positive, and Edit of two empty segment
lists is 100 (the reference divides 0 by 0).
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


def segments(
    labels: np.ndarray, background: Iterable[int] | None = None, exact_final_segment: bool = False
) -> list[tuple[int, int, int]]:
    """Runs of equal labels as (label, start, end_exclusive), background runs removed.

    The last run ends at T-1 as in the reference code (see the module docstring), or at T with
    ``exact_final_segment``."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [labels.size if exact_final_segment else labels.size - 1]])
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
    """(tp, fp, fn) with one match per ground-truth segment.

    As the reference: each predicted segment takes the ground-truth segment of highest IoU
    (other classes count 0, the first one on ties; a zero-length union is never a match) and is a
    true positive when that IoU reaches ``overlap`` and the segment is still unmatched."""
    used = [False] * len(gt_segs)
    tp = fp = 0
    for label, ps, pe in pred_segs:
        best, best_j = -np.inf, -1
        for j, (gl, gs, ge) in enumerate(gt_segs):
            union = max(pe, ge) - min(ps, gs)
            if union <= 0:  # the reference gets NaN here, which never matches
                best, best_j = np.nan, j
                break
            iou = (min(pe, ge) - max(ps, gs)) / union if gl == label else 0.0
            if iou > best:
                best, best_j = iou, j
        if best_j >= 0 and best >= overlap and not used[best_j]:
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


def segmentation_scores(
    predictions, labels, background: Iterable[int] | None = None, exact_final_segment: bool = False
) -> dict[str, float]:
    """predictions, labels: lists of 1-D int arrays (one per video) -> acc, edit, f1@{10,25,50} (%).

    Equal to the MS-TCN/ASFormer/DiffAct reference evaluation, including its final-segment rule
    (module docstring); ``exact_final_segment=True`` ends the last segment at T instead."""
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
        ps, gs = segments(p, bg, exact_final_segment), segments(g, bg, exact_final_segment)
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


def multilabel_scores(
    probabilities, labels, threshold: float = 0.5, exact_final_segment: bool = False, activity=None
) -> dict[str, float]:
    """probabilities, labels: lists of (C, T) arrays (probabilities in [0,1], multi-hot labels).

    acc: top-1 hit accuracy (the top-scoring class is in the frame's ground-truth set), over
    frames that have at least one ground-truth class (the paper's Acc);
    map: frame-level mean average precision over classes with at least one positive frame;
    edit, f1@k: per class on binary activity sequences (prob >= threshold), inactive frames
    as background; Edit averaged over (video, class) pairs where either side is active,
    F1 tp/fp/fn micro-summed over classes and videos. ``activity``: (C, T) bool arrays to score
    Edit/F1 on instead of ``probabilities >= threshold`` (what a streaming node published).
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
        pred = p >= threshold if activity is None else np.asarray(activity[i], dtype=bool)
        for c in range(y.shape[0]):
            ps = segments(pred[c].astype(int), [0], exact_final_segment)
            gs = segments(y[c].astype(int), [0], exact_final_segment)
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
def _compat_segments(frames: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """The authors' segments: a new one whenever the raw per-frame vector changes; the last ends at T."""
    out, start = [], 0
    for t in range(1, len(frames) + 1):
        if t == len(frames) or not np.array_equal(frames[t], frames[start]):
            out.append((frames[start], start, t))
            start = t
    return out


def _compat_judge(pred_vector: np.ndarray, gt_vector: np.ndarray) -> bool:
    """The authors' match test: the prediction's top class is one of the ground truth's nonzero
    classes. Their ``np.nonzero`` returns a 1-tuple, so exactly one top class is compared, and that
    class is the one ``np.argpartition(p, -1)`` puts last: their tie rule, which is not argmax's
    (first index); numpy's selection decides among tied classes, so it is called here too."""
    top = int(np.argpartition(pred_vector, -1)[-1])
    return bool(gt_vector[top] != 0)


AUTHORS_MEDIAN = 30  # their RHAS config: postprocess {"type": "median", "value": 30}


def authors_postprocess(probs: np.ndarray, size: int = AUTHORS_MEDIAN) -> np.ndarray:
    """The authors' post-processing of one video's (C, T) output before their judge: a median
    filter of ``size`` along the CLASS axis of every frame (their loop runs over
    ``output.shape[1]`` of a (C, T) array, i.e. over frames; scipy's default 'reflect' borders),
    then each frame renormalised to sum 1 (a frame whose filtered values are all 0 becomes NaN,
    as theirs does). It changes which class is on top."""
    from scipy.ndimage import median_filter

    filtered = median_filter(np.asarray(probs, dtype=np.float64), size=(size, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return filtered / filtered.sum(0, keepdims=True)


def official_compat_scores(probabilities, labels, median: int | None = AUTHORS_MEDIAN) -> dict[str, float]:
    """Reproduces the authors' evaluation script, their post-processing included (``median``:
    :func:`authors_postprocess` of each (C, T) prediction first; None skips it). NOT a correct metric:
    - the top class is taken with their tie rule (see ``_compat_judge``);
    - a frame is correct when its top-1 class is anywhere in its ground-truth set (frames
      without any ground-truth class count as wrong);
    - segments are runs of identical raw vectors (C-dim probabilities / multi-hot rows); a
      predicted and a ground-truth segment "agree" under the same top-1-in-set judge;
    - intersection is |min(end) - max(start)|, positive even for disjoint segments;
    - no one-match-per-segment rule: one ground-truth segment can be matched many times;
    - Edit is summed over videos and divided by 2 (their ``len(video_list)`` is the pair
      [ground truths, predictions]) instead of the number of videos.
    Labelled "official-compat (inflated)" wherever shown.
    """
    hits = frames = 0
    edit_sum = 0.0
    counts = {k: [0, 0, 0] for k in OVERLAPS}
    for p, y in zip(probabilities, labels, strict=True):
        p = np.asarray(p, dtype=np.float64)
        if median:
            p = authors_postprocess(p, median)
        p, y = p.T, np.asarray(y, dtype=np.float64).T  # (T, C)
        hits += sum(_compat_judge(pt, yt) for pt, yt in zip(p, y, strict=True))
        frames += len(y)
        ps, gs = _compat_segments(p), _compat_segments(y)
        agree = np.array([[_compat_judge(pv, gv) for gv, _, _ in gs] for pv, _, _ in ps], dtype=bool)
        # Levenshtein with "agree" as equality, normalised by the longer sequence.
        D = np.zeros((len(ps) + 1, len(gs) + 1))
        D[:, 0], D[0, :] = np.arange(len(ps) + 1), np.arange(len(gs) + 1)
        for i in range(1, len(ps) + 1):
            for j in range(1, len(gs) + 1):
                D[i, j] = D[i - 1, j - 1] if agree[i - 1, j - 1] else min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1]) + 1
        edit_sum += (1 - D[-1, -1] / max(len(ps), len(gs))) * 100
        g_start = np.array([s for _, s, _ in gs], dtype=np.float64)
        g_end = np.array([e for _, _, e in gs], dtype=np.float64)
        for k in OVERLAPS:
            tp = fp = 0
            matched = np.zeros(len(gs), dtype=bool)
            for j, (_, s, e) in enumerate(ps):
                inter = np.abs(np.minimum(e, g_end) - np.maximum(s, g_start))
                union = np.abs(np.maximum(e, g_end) - np.minimum(s, g_start))
                iou = np.abs(inter / union * agree[j])
                best = int(iou.argmax())
                if iou[best] >= k:
                    tp += 1
                    matched[best] = True
                else:
                    fp += 1
            counts[k][0] += tp
            counts[k][1] += fp
            counts[k][2] += len(gs) - int(matched.sum())
    out = {"acc": 100.0 * hits / max(frames, 1), "edit": edit_sum / 2}
    for k in OVERLAPS:
        out[f"f1@{round(k * 100)}"] = _f1(*counts[k])
    return out
