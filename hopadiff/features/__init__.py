"""Frozen vision-language backbones (BLIP-2, CLIP) through transformers, and feature extraction.

The same code runs offline (hopadiff-extract) and online in the ROS node."""

from .backbone import BACKBONES, Backbone, load_backbone

__all__ = ["BACKBONES", "Backbone", "load_backbone"]
