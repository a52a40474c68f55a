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


# The whole video, where Debian's opencv-doc is installed (.ci/run installs it; tests that need it
# skip with this reason elsewhere): 795 frames, 768x576, 10 fps, people walking through a hall.
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
NO_VTEST = f"needs OpenCV's vtest.avi ({VTEST}: apt-get install opencv-doc)"


def vtest_frames(first: int = 0, n: int = 1, scale: float = 1.0, step: int = 1) -> list[np.ndarray]:
    """Frames first, first + step, ... of vtest.avi (n of them), RGB uint8, resized by ``scale``."""
    cap = cv2.VideoCapture(str(VTEST))
    if not cap.isOpened():
        raise FileNotFoundError(NO_VTEST)
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    out = []
    for k in range(n * step):
        ok, bgr = cap.read()
        if not ok:
            break
        if k % step == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            out.append(rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    cap.release()
    return out
