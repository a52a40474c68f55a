"""Real footage for the node's tests without a video file: frame 100 of OpenCV's vtest.avi (a hall
with pedestrians, test/data/vtest_frame100.jpg, 768x576) seen through a 330x240 window that pans
one pixel per frame across it: the persons are real pixels (what the HOG detector and the colour
descriptor see), the motion is the camera's."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

PHOTO = Path(__file__).resolve().parents[1] / "data" / "vtest_frame100.jpg"
WIDTH, HEIGHT, TOP, LEFT = 330, 240, 90, 280


@lru_cache(maxsize=1)
def _photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)


def pan(k: int) -> np.ndarray:
    """Frame k (RGB uint8, 240x330): the window at LEFT + k % 150 pixels."""
    x = LEFT + k % 150
    return np.ascontiguousarray(_photo()[TOP : TOP + HEIGHT, x : x + WIDTH])
