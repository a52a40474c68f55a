"""The ~/debug_image overlay: boxes, the referred person highlighted, current labels."""

from __future__ import annotations

import cv2
import numpy as np

from hopadiff.streaming import SegmentStatus


def current_actions(result, labels: list[str], current: dict[int, str]) -> dict[int, str]:
    """Update person id -> 'label, label' with this frame's outputs: the actions ongoing at the
    newest frame of each person's latest window (a closed stream clears them)."""
    for out in result.outputs:
        newest = out.window_end_ns
        active = [labels[s.class_id] for s in out.segments if s.status == SegmentStatus.ONGOING and s.end_ns >= newest]
        current[out.person_id] = "" if out.closed else ", ".join(active[:3])
    live = {t.track_id for t in result.tracks}
    for pid in [p for p in current if p not in live]:
        del current[pid]
    return current


def draw(rgb: np.ndarray, result, labels: list[str], current: dict[int, str] | None = None) -> np.ndarray:
    """-> BGR image with one box per track (target in red, others grey) and its current actions
    (``current`` from current_actions; default: this frame's outputs only)."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if current is None:
        current = current_actions(result, labels, {})
    for t in result.tracks:
        x, y, w, h = (int(v) for v in t.box)
        color = (0, 0, 255) if t.track_id == result.target_id else (160, 160, 160)
        cv2.rectangle(img, (x, y), (x + w, y + h), color, 2)
        text = f"#{t.track_id} {current.get(t.track_id, '')}".strip()
        cv2.putText(img, text, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    return img
