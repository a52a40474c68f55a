"""The synthetic data's one vocabulary: appearance words, action names and referring texts.

Plain data only (no numpy, no OpenCV), so the tiny-model builders can take their tokenizer
words from here without importing a generator. Every name here is an RHAS133 class name or an
appearance word; the feature generator, the video renderer and the tiny tokenizer all read them
from this module.
"""

from __future__ import annotations

from pathlib import Path

from ..config import read_label_names

RHAS133_CLASSES = Path(__file__).resolve().parents[1] / "resources" / "rhas133_classes.txt"

# Shirt colour -> BGR (OpenCV) for the renderer; the key order is the colour order everywhere.
BGR = {
    "red": (40, 40, 220),
    "blue": (220, 80, 30),
    "green": (60, 180, 60),
    "yellow": (40, 220, 230),
    "white": (235, 235, 235),
    "black": (25, 25, 25),
    "orange": (30, 140, 250),
    "purple": (160, 50, 140),
}
COLORS = list(BGR)
SIZES = ["short", "tall"]

# RHAS133 actions that differ visibly; feature datasets name their classes with these first.
VISIBLE_ACTIONS = [
    "walking",
    "running",
    "jumping",
    "waving",
    "bending",
    "sitting",
    "falling",
    "standing",
    "clapping",
    "kicking",
    "pointing",
    "lying",
    "talking",
    "dancing",
]
# The actions the stick-figure renderer can draw (a subset of VISIBLE_ACTIONS).
VIDEO_ACTIONS = ["standing", "walking", "running", "jumping", "waving", "bending", "sitting", "falling"]


def referring_text(size: str, color: str) -> str:
    """The referring text of a synthetic person, e.g. "the tall person in the red shirt"."""
    return f"the {size} person in the {color} shirt"


def class_names(num_classes: int) -> list[str]:
    """``num_classes`` label names: the visible actions first, then other RHAS133 names, then ``class_i``."""
    rhas = read_label_names(RHAS133_CLASSES)
    names = [n for n in VISIBLE_ACTIONS if n in rhas][:num_classes]
    names += [n for n in rhas if n not in names][: num_classes - len(names)]
    if len(names) < num_classes:
        names += [f"class_{i}" for i in range(len(names), num_classes)]
    return names
