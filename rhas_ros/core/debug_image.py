"""The ~/debug_image overlay: boxes, the referred person highlighted, current labels."""

from __future__ import annotations

import cv2
import numpy as np


def draw(rgb: np.ndarray, result, labels: list[str]) -> np.ndarray:
    """-> BGR image with one box per track (target in red, others grey) and its latest labels."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    current = {}
    for out in result.outputs:
        active = [labels[s.class_id] for s in out.segments if s.status == 0]
        current[out.person_id] = ", ".join(active[:3])
    for t in result.tracks:
        x, y, w, h = (int(v) for v in t.box)
        color = (0, 0, 255) if t.track_id == result.target_id else (160, 160, 160)
        cv2.rectangle(img, (x, y), (x + w, y + h), color, 2)
        text = f"#{t.track_id} {current.get(t.track_id, '')}".strip()
        cv2.putText(img, text, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return img
