"""Per-frame class probabilities -> which actions are active: the one rule, shared by the node's
stitcher and by evaluation (offline and streaming).

Smoothing is a median filter along time only (the authors' code filtered along the class axis);
multi-label: a class is active at ``threshold``, plus the most probable class of every frame when
``at_least_one``; single-label: the most probable class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter


def smooth_time(probs: np.ndarray, size: int) -> np.ndarray:
    """Median filter of (C, T) probabilities along TIME only; ``size`` <= 1 leaves them as they are."""
    if size <= 1:
        return probs
    return median_filter(probs, size=(1, size), mode="nearest")


@dataclass(frozen=True)
class ActivityRule:
    multi_label: bool = True
    threshold: float = 0.5  # multi-label: active at this probability
    at_least_one: bool = True  # multi-label: the top class of every frame is active too
    smooth: int = 1  # median filter length along time (1: off)

    def apply(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(C, n) probabilities -> (active (C, n) bool, the smoothed probabilities)."""
        probs = smooth_time(probs, self.smooth)
        active = probs >= self.threshold if self.multi_label else np.zeros(probs.shape, dtype=bool)
        if probs.shape[1] and (not self.multi_label or self.at_least_one):
            active[probs.argmax(axis=0), np.arange(probs.shape[1])] = True
        return active, probs
