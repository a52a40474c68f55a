"""Tiny random BLIP-2 and CLIP saved to a folder (see hopadiff.features.tiny)."""

from __future__ import annotations

from pathlib import Path

from hopadiff.features import tiny


def make_tiny_clip(path: Path) -> Path:
    tiny.make_tiny_clip(path)
    return path


def make_tiny_blip2(path: Path) -> Path:
    tiny.make_tiny_blip2(path)
    return path
