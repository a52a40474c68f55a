"""Video frames and person crops as numpy arrays (OpenCV, no torch): shared by extraction,
the node's pipeline and the clip player."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file."""


def read_frames(path: Path) -> list[np.ndarray]:
    """All frames of a video as RGB uint8 arrays."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path}")
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise DataError(f"video {path} has no readable frames")
    return frames


def crop(frame: np.ndarray, box, min_size: int = 4) -> np.ndarray | None:
    """Clip [x, y, w, h] to the frame; None when missing or smaller than min_size pixels."""
    if box is None:
        return None
    H, W = frame.shape[:2]
    x, y, w, h = (round(v) for v in box)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 - x0 < min_size or y1 - y0 < min_size:
        return None
    return frame[y0:y1, x0:x1]
