"""Offline evaluation's sliding windows over whole recorded sequences.

A sequence of T frames is covered by windows of W frames every ``hop`` frames (the last
window is aligned to the end so every frame is covered). Each frame's probabilities are the
mean over the windows that cover it. The node runs trailing windows online instead
(hopadiff.streaming, which ``hopadiff-eval --streaming`` replays); both share the activity
rule (hopadiff.streaming.activity).
"""

from __future__ import annotations

import numpy as np


def window_starts(T: int, W: int, hop: int) -> list[int]:
    if W < 1 or hop < 1:
        raise ValueError(f"window W={W} and hop={hop} must be >= 1")
    if T <= W:
        return [0]
    starts = list(range(0, T - W + 1, hop))
    if starts[-1] != T - W:
        starts.append(T - W)
    return starts


def pad_to_window(x: np.ndarray, W: int, axis: int = -1) -> np.ndarray:
    """Repeat the last frame so that ``axis`` has length W (a no-op when already >= W)."""
    n = x.shape[axis]
    if n >= W:
        return x
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, W - n)
    return np.pad(x, pad, mode="edge")


class StitchedProbabilities:
    """Mean of overlapping window outputs per frame: add(start, probs (C, W)); mean() -> (C, T)."""

    def __init__(self, num_classes: int, num_frames: int):
        self.sum = np.zeros((num_classes, num_frames), dtype=np.float64)
        self.count = np.zeros(num_frames, dtype=np.int64)

    def add(self, start: int, probs: np.ndarray) -> None:
        n = min(probs.shape[1], self.sum.shape[1] - start)
        self.sum[:, start : start + n] += probs[:, :n]
        self.count[start : start + n] += 1

    def mean(self) -> np.ndarray:
        if (self.count == 0).any():
            raise ValueError(f"{int((self.count == 0).sum())} frames are covered by no window")
        return (self.sum / self.count).astype(np.float32)
