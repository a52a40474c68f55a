"""Metrics: hand-computed cases and random sequences against a straightforward re-implementation."""

from __future__ import annotations

import numpy as np
import pytest

from hopadiff.metrics import (
    multilabel_scores,
    official_compat_scores,
    segmentation_scores,
    segments,
)


def test_segments_and_background():
    y = np.array([0, 0, 1, 1, 1, 0, 2])
    assert segments(y) == [(0, 0, 2), (1, 2, 5), (0, 5, 6), (2, 6, 7)]
    assert segments(y, background=[0]) == [(1, 2, 5), (2, 6, 7)]


def test_hand_computed_case():
    gt = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    pr = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    s = segmentation_scores([pr], [gt])
    assert s["acc"] == pytest.approx(80.0)
    assert s["edit"] == pytest.approx(100.0)  # same segment order
    # IoUs: class0 3/4, class1 4/5 (pred 3..6 vs gt 4..7: inter 3, union 5 -> 0.6), class2 2/3
    # -> at 0.5 all three match; at 0.75 not evaluated; F1@50 = 100
    assert s["f1@50"] == pytest.approx(100.0)
    assert s["f1@10"] == pytest.approx(100.0)


def test_one_match_per_ground_truth_segment():
    gt = np.array([1, 1, 1, 1, 1, 1, 1, 1])
    pr = np.array([1, 1, 1, 1, 0, 1, 1, 1])  # two predicted segments of class 1 over one gt segment
    s = segmentation_scores([pr], [gt], background=[0])
    # first pred segment IoU 4/8 = 0.5 -> tp at 10/25/50; second 3/8 matches the same gt -> fp
    # tp=1 fp=1 fn=0 -> P=0.5 R=1 F1=66.67
    assert s["f1@10"] == pytest.approx(200 / 3)
    assert s["f1@50"] == pytest.approx(200 / 3)
    assert s["edit"] == pytest.approx(50.0)  # [1, 1] vs [1]: one deletion over max 2


def test_background_only_and_single_segment_edges():
    assert segmentation_scores([np.zeros(5, int)], [np.zeros(5, int)], background=[0])["edit"] == 100.0
    s = segmentation_scores([np.zeros(5, int)], [np.ones(5, int)], background=[0])
    assert s["acc"] == 0 and s["edit"] == 0 and s["f1@10"] == 0
    s = segmentation_scores([np.full(4, 3)], [np.full(4, 3)])
    assert all(v == 100.0 for v in s.values())


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="video 1"):
        segmentation_scores([np.zeros(3), np.zeros(4)], [np.zeros(3), np.zeros(5)])


# ---------------------------------------------------------------- independent reference
def ref_scores(preds, gts, bg=()):
    def segs(y):
        out, start = [], 0
        for i in range(1, len(y) + 1):
            if i == len(y) or y[i] != y[start]:
                if y[start] not in bg:
                    out.append((y[start], start, i))
                start = i
        return out

    def lev(a, b):
        d = np.zeros((len(a) + 1, len(b) + 1))
        d[:, 0] = np.arange(len(a) + 1)
        d[0, :] = np.arange(len(b) + 1)
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
        return d[-1, -1]

    acc = sum((p == g).sum() for p, g in zip(preds, gts, strict=True)) / sum(len(g) for g in gts) * 100
    edits, out = [], {"acc": acc}
    for p, g in zip(preds, gts, strict=True):
        a, b = [s[0] for s in segs(p)], [s[0] for s in segs(g)]
        edits.append(100.0 if not a and not b else (1 - lev(a, b) / max(len(a), len(b))) * 100)
    out["edit"] = np.mean(edits)
    for thr in (0.1, 0.25, 0.5):
        tp = fp = fn = 0
        for p, g in zip(preds, gts, strict=True):
            ps, gs = segs(p), segs(g)
            hit = np.zeros(len(gs), bool)
            for lab, s, e in ps:
                ious = np.array(
                    [
                        max(0, min(e, ge) - max(s, gs_)) / (max(e, ge) - min(s, gs_)) if gl == lab else 0.0
                        for gl, gs_, ge in gs
                    ]
                )
                if len(ious) and ious.max() >= thr and not hit[ious.argmax()]:
                    tp += 1
                    hit[ious.argmax()] = True
                else:
                    fp += 1
            fn += len(gs) - hit.sum()
        prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        out[f"f1@{round(thr * 100)}"] = 0.0 if prec + rec == 0 else 200 * prec * rec / (prec + rec)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_random_sequences_match_reference(seed):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(4):
        n = int(rng.integers(20, 80))
        g = np.repeat(rng.integers(0, 4, 12), rng.integers(1, 9, 12))[:n]
        p = g.copy()
        flip = rng.random(len(p)) < 0.15
        p[flip] = rng.integers(0, 4, flip.sum())
        gts.append(g)
        preds.append(p)
    for bg in ([], [0]):
        ours = segmentation_scores(preds, gts, background=bg)
        ref = ref_scores(preds, gts, bg)
        for k in ref:
            assert ours[k] == pytest.approx(ref[k]), (k, bg)


def test_multilabel_scores_hand_case():
    y = np.zeros((3, 6))
    y[0, :3] = 1
    y[1, 3:] = 1
    y[2, 2:4] = 1  # co-occurring class
    p = np.zeros((3, 6))
    p[0, :3] = 0.9
    p[1, 3:] = 0.8
    p[2, :] = 0.1
    s = multilabel_scores([p], [y])
    assert s["acc"] == pytest.approx(100.0)  # top-1 always inside the gt set
    # per-class F1: class0 tp, class1 tp, class2 fn -> P=1 R=2/3 -> F1=80
    assert s["f1@50"] == pytest.approx(80.0)
    # AP: classes 0 and 1 perfect; class 2 all tied at 0.1, positives at ranks 3 and 4 -> (1/3 + 2/4) / 2
    assert s["map"] == pytest.approx(100 * (1 + 1 + (1 / 3 + 1 / 2) / 2) / 3)


def test_compat_metric_is_inflated_on_disjoint_segments():
    """The authors' |min(end)-max(start)| counts disjoint segments as overlapping."""
    y = np.zeros((2, 20))
    y[0, :10] = 1
    y[1, 10:] = 1
    p = np.zeros((2, 20))
    p[0, 12:] = 1  # class 0 predicted where it is NOT
    p[1, :12] = 1
    ours = multilabel_scores([p], [y])
    compat = official_compat_scores([p], [y])
    assert ours["f1@50"] == 0.0
    assert compat["f1@10"] > ours["f1@10"]
