"""Synthetic multi-person clips for the extractor, the node's tests and the README demo.

Stick figures with distinct shirt colours and sizes move and act according to per-frame
labels drawn from RHAS133 actions that differ visibly. Each clip comes with per-frame
person boxes, per-person labels and referring texts built from the attributes ("the tall
person in the red shirt"), written as an extract manifest (``extract.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from ..data import EXTRACT_FORMAT
from .vocab import BGR, SIZES, VIDEO_ACTIONS, class_names, referring_text


def _pose(action: str, phase: float, h: float):
    """-> (line segments (x0, y0, x1, y1), head centre y, shoulder point) of a figure of height h, feet at y=0."""
    leg, torso, arm = 0.45 * h, 0.35 * h, 0.3 * h
    swing = {"walking": 0.4, "running": 0.8}.get(action, 0.0) * math.sin(phase)
    hip_y, lean = -leg, 0.0
    if action == "sitting":
        hip_y = -0.45 * leg
    if action == "bending":
        lean = 1.0  # radians forward
    sh = torso * math.sin(lean), hip_y - torso * math.cos(lean)  # shoulder
    segs = []
    if action == "sitting":
        segs += [(0, hip_y, 0.45 * leg, hip_y), (0.45 * leg, hip_y, 0.45 * leg, 0)]
        segs += [(0, hip_y, 0.4 * leg, hip_y + 2), (0.4 * leg, hip_y + 2, 0.4 * leg, 0)]
    else:
        for s in (swing, -swing):
            segs.append((0, hip_y, leg * math.sin(s), hip_y + leg * math.cos(s)))
    segs.append((0, hip_y, sh[0], sh[1]))  # torso
    if action == "waving":
        wave = 0.5 * math.sin(phase * 2)
        segs.append((sh[0], sh[1], sh[0] + arm * math.sin(2.6 + wave), sh[1] + arm * math.cos(2.6 + wave)))
        segs.append((sh[0], sh[1], sh[0] - 0.3 * arm, sh[1] + arm))
    else:
        a = swing if action in ("walking", "running") else 0.15
        segs += [
            (sh[0], sh[1], sh[0] + arm * math.sin(a), sh[1] + arm),
            (sh[0], sh[1], sh[0] - arm * math.sin(a), sh[1] + arm),
        ]
    head_y = sh[1] - 0.1 * h
    return segs, head_y, sh


def _draw_person(img, x: float, ground: float, h: float, color, action: str, phase: float, progress: float):
    segs, head_y, sh = _pose(action, phase, h)
    dy = -abs(math.sin(phase)) * 0.3 * h if action == "jumping" else 0.0
    angle = min(1.0, progress * 3) * math.pi / 2 if action == "falling" else 0.0  # tip over, then lie
    ca, sa = math.cos(angle), math.sin(angle)

    def tf(px, py):
        return x + px * ca - py * sa, ground + dy + px * sa + py * ca

    pts = []
    thick = max(2, int(h / 25))
    for x0, y0, x1, y1 in segs:
        p0, p1 = tf(x0, y0), tf(x1, y1)
        pts += [p0, p1]
    # Limbs dark, torso a thick band in the shirt colour.
    hip = tf(0, segs[0][1])
    shoulder = tf(*sh)
    for x0, y0, x1, y1 in segs:
        cv2.line(img, tuple(map(int, tf(x0, y0))), tuple(map(int, tf(x1, y1))), (50, 50, 50), thick, cv2.LINE_AA)
    cv2.line(img, tuple(map(int, hip)), tuple(map(int, shoulder)), color, max(4, int(h / 7)), cv2.LINE_AA)
    head = tf(sh[0] if action == "bending" else 0, head_y)
    r = max(3, int(0.09 * h))
    cv2.circle(img, tuple(map(int, head)), r, (150, 180, 220), -1, cv2.LINE_AA)
    pts += [(head[0] - r, head[1] - r), (head[0] + r, head[1] + r)]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    H, W = img.shape[:2]
    x0, y0 = max(0, int(min(xs)) - 3), max(0, int(min(ys)) - 3)
    x1, y1 = min(W - 1, int(max(xs)) + 3), min(H - 1, int(max(ys)) + 3)
    return [x0, y0, x1 - x0, y1 - y0] if x1 > x0 and y1 > y0 else None


def render_clip(path: Path, frames: int, persons: int, size=(320, 240), fps=10.0, seed=0, actions=VIDEO_ACTIONS):
    """Write one clip; returns per-person dicts (text, boxes, labels as class-name lists).
    ``actions``: the ones persons perform (walking and running only: people crossing each other)."""
    rng = np.random.default_rng(seed)
    W, H = size
    colors = rng.choice(list(BGR), size=persons, replace=False)
    sizes = [SIZES[i % 2] for i in rng.permutation(persons)]
    people = []
    for p in range(persons):
        h = (0.55 if sizes[p] == "tall" else 0.38) * H
        track, t = [], 0
        while t < frames:
            n = int(rng.integers(12, 30))
            track += [actions[int(rng.integers(len(actions)))]] * n
            t += n
        people.append(
            {
                "color": str(colors[p]),
                "size": sizes[p],
                "h": h,
                "x": (p + 0.5) * W / persons,
                "dir": 1 if rng.random() < 0.5 else -1,
                "actions": track[:frames],
                "boxes": [],
                "labels": [],
            }
        )
    bg = np.full((H, W, 3), 200, np.uint8)
    bg[int(0.8 * H) :] = (120, 140, 150)
    cv2.rectangle(bg, (int(0.05 * W), int(0.3 * H)), (int(0.2 * W), int(0.8 * H)), (170, 160, 150), -1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} (mp4v)")
    for f in range(frames):
        img = bg.copy()
        for p in people:
            action = p["actions"][f]
            seg_start = f
            while seg_start > 0 and p["actions"][seg_start - 1] == action:
                seg_start -= 1
            speed = {"walking": 1.5, "running": 4.0}.get(action, 0.0)
            p["x"] += p["dir"] * speed
            if not 0.1 * W < p["x"] < 0.9 * W:
                p["dir"] *= -1
                p["x"] = float(np.clip(p["x"], 0.1 * W, 0.9 * W))
            box = _draw_person(img, p["x"], 0.9 * H, p["h"], BGR[p["color"]], action, f * 0.6, (f - seg_start) / 10.0)
            p["boxes"].append(box)
            p["labels"].append([action] + (["standing"] if action == "waving" else []))
        writer.write(img)
    writer.release()
    return [{"text": referring_text(p["size"], p["color"]), "boxes": p["boxes"], "labels": p["labels"]} for p in people]


def write_video_dataset(
    out: Path, clips=2, frames=120, persons=3, size=(320, 240), fps=10.0, seed=0, actions=VIDEO_ACTIONS
) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = class_names(len(VIDEO_ACTIONS))
    assert set(VIDEO_ACTIONS) <= set(names), "the video actions must be RHAS133 names"
    videos = []
    for c in range(clips):
        people = render_clip(out / f"clip{c}.mp4", frames, persons, size, fps, seed + c, actions)
        videos.append(
            {
                "name": f"clip{c}",
                "video": f"clip{c}.mp4",
                "fps": fps,
                "frames": frames,
                "persons": [
                    {
                        "person_id": i + 1,
                        "text": p["text"],
                        "boxes": p["boxes"],
                        "labels": [[names.index(a) for a in fr] for fr in p["labels"]],
                    }
                    for i, p in enumerate(people)
                ],
            }
        )
    doc = {"format": EXTRACT_FORMAT, "version": 1, "labels": names, "videos": videos}
    (out / "extract.json").write_text(json.dumps(doc))
    return {
        "clips": clips,
        "frames": frames,
        "persons": persons,
        "manifest": str(out / "extract.json"),
        "classes": names,
    }
