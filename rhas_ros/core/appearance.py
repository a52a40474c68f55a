"""A person's colours as the tracker's appearance descriptor: needs no model weights.

The tracker tells persons apart after a crossing or an occlusion by comparing crop appearance
(``PersonTracker``, ``embeddings``). The backbone's crop features are one choice, but how similar
two persons' features are depends on the weights, so no appearance gate can be set for them ahead
(README, Tracking). The colours of the clothes are the classic re-identification cue (the colour
histograms of the person re-ID literature before learnt features): the same for a person from frame
to frame, different for two persons unless they dress alike, and their similarity scale is known
in advance, so the gate has a default that was measured (scripts/bench_tracking.py).

``color_descriptor``: an HSV histogram (hue 16 x saturation 3 x value 6 bins, OpenCV's calcHist)
of the box's upper-body region (the middle half of its width, 15-65 % of its height: the shirt, not
the floor or the wall beside a person), square-rooted and L2-normalised, so that the cosine of two
descriptors is the Bhattacharyya coefficient of the two histograms (1: the same colours, 0: none
shared). Chosen on the rendered crossing clips (bench_tracking --synthetic, three clip sets): 8 hue
bins confuse red and orange; counting unsaturated pixels by value alone, or spreading counts into
neighbouring bins, both cost fragmentations there.
"""

from __future__ import annotations

import cv2
import numpy as np

BINS = (16, 3, 6)  # hue, saturation, value
RANGES = [0, 180, 0, 256, 0, 256]  # OpenCV's 8-bit HSV: hue in [0, 180)
REGION = (0.25, 0.75, 0.15, 0.65)  # x0, x1, y0, y1 as fractions of the box
MIN_PIXELS = 16  # a region smaller than this gives no descriptor
DIM = BINS[0] * BINS[1] * BINS[2]


def color_descriptor(rgb: np.ndarray, box) -> np.ndarray | None:
    """(DIM,) unit float32 colour descriptor of ``box`` (x, y, w, h pixels) in the RGB ``rgb``
    image; None for a box that is not finite or empty, or whose region within the image is under
    MIN_PIXELS."""
    x, y, w, h = (float(v) for v in box)
    if not np.isfinite([x, y, w, h]).all() or w <= 0 or h <= 0:
        return None
    H, W = rgb.shape[:2]
    x0, x1 = int(max(0, x + REGION[0] * w)), int(min(W, x + REGION[1] * w))
    y0, y1 = int(max(0, y + REGION[2] * h)), int(min(H, y + REGION[3] * h))
    if x1 <= x0 or y1 <= y0 or (x1 - x0) * (y1 - y0) < MIN_PIXELS:  # also: a box outside the image
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), RANGES).reshape(-1)
    hist = np.sqrt(hist / hist.sum())
    return (hist / np.linalg.norm(hist)).astype(np.float32)


def color_descriptors(rgb: np.ndarray, boxes) -> list[np.ndarray | None]:
    """One ``color_descriptor`` per box."""
    return [color_descriptor(rgb, b) for b in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)]
