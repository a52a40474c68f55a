"""Costs and assignment for the tracker: box overlap, appearance similarity, and a minimum-cost
matching that may leave rows and columns unmatched. Boxes are (x, y, w, h) pixels."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

UNMATCHED_COST = 0.5  # what leaving a track or a detection unmatched costs (a pair must beat it)
FORBIDDEN = 1e6  # the cost of a pair that is not allowed


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


def clip_to_image(b: np.ndarray, width: int, height: int) -> np.ndarray:
    """xywh boxes cut to the part inside a width x height image (a box wholly outside gets no area)."""
    x0, y0 = np.clip(b[:, 0], 0, width), np.clip(b[:, 1], 0, height)
    x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, width), np.clip(b[:, 1] + b[:, 3], 0, height)
    return np.c_[x0, y0, x1 - x0, y1 - y0]


def enlarge(b: np.ndarray, buffer: float) -> np.ndarray:
    """xywh boxes grown by ``buffer`` times their width/height on every side (C-BIoU's buffer)."""
    if buffer == 0:
        return b
    return np.c_[b[:, 0] - buffer * b[:, 2], b[:, 1] - buffer * b[:, 3], b[:, 2:] * (1 + 2 * buffer)]


def unit(v) -> np.ndarray | None:
    """A descriptor scaled to length 1 (None for a missing, zero or non-finite one)."""
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    n = np.linalg.norm(v)
    return v / n if n > 0 and np.isfinite(n) else None


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Cosine of two unit descriptors; NaN when either is missing."""
    return float("nan") if a is None or b is None else float(a @ b)


def assign(cost: np.ndarray, allowed: np.ndarray, unmatched_cost: float = UNMATCHED_COST) -> list[tuple[int, int]]:
    """Minimum-cost matching restricted to the allowed pairs, where leaving a row or a column
    unmatched costs ``unmatched_cost`` -> [(row, col)]. Plain rectangular assignment maximises the
    number of pairs first: two poor pairs beat one good pair and two leftovers (a lost track takes
    another person's box so that its own is matched by the wrong track). Padding the matrix with
    the cost of staying unmatched makes a pair worth taking only if it beats that. The exact
    solver is scipy's ``linear_sum_assignment`` (fast at these sizes)."""
    n, m = cost.shape
    if n == 0 or m == 0 or not allowed.any():
        return []
    full = np.full((n + m, m + n), FORBIDDEN)
    full[:n, :m] = np.where(allowed, cost, FORBIDDEN)
    full[:n, m:][np.diag_indices(n)] = unmatched_cost  # row r left unmatched
    full[n:, :m][np.diag_indices(m)] = unmatched_cost  # column c left unmatched
    full[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(full)
    return [(r, c) for r, c in zip(rows, cols, strict=True) if r < n and c < m and allowed[r, c]]
