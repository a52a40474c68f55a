"""Checkpoints that cannot run code: tensors plus plain data, loaded with weights_only=True.

File content (a torch.save'd dict):
  format: "hopadiff-checkpoint", format_version: 1, hopadiff_version: str,
  config: the full Config as nested plain data, label_names: list[str],
  model: state_dict, extra: plain data and tensors (optimizer/scheduler/RNG state, epoch ...).
Writes go to a temporary file in the same folder, are fsync'ed and renamed over the target,
so a crash never leaves a half-written checkpoint in place.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from .config import Config, ConfigError, config_from_dict, config_to_dict

FORMAT = "hopadiff-checkpoint"
FORMAT_VERSION = 1
HOPADIFF_VERSION = "0.1.0"


class CheckpointError(ValueError):
    """A file is not a usable HopaDIFF checkpoint (corrupt, foreign, or for other data)."""


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(path, model, config: Config, label_names: list[str], **extra) -> None:
    """Save weights, the full config and the label names (plain data only) atomically."""
    if len(label_names) != config.model.num_classes:
        raise ValueError(f"{len(label_names)} label names for {config.model.num_classes} classes")
    module = model.module if hasattr(model, "module") else model  # unwrap DDP
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    atomic_torch_save(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "hopadiff_version": HOPADIFF_VERSION,
            "config": config_to_dict(config),
            "label_names": list(map(str, label_names)),
            "model": state,
            "extra": extra,
        },
        path,
    )


def read_checkpoint(path, map_location=None) -> dict:
    """The raw checkpoint dict, validated; raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; torch.load fails obscurely on anything else
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file: not a torch.save (zip) archive")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, IndexError) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a HopaDIFF checkpoint (no format={FORMAT!r} marker)")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt.get('format_version')} is not supported ({FORMAT_VERSION})"
        )
    for key in ("config", "label_names", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return ckpt


def load_checkpoint(path, map_location=None, expected_labels=None, expected_feature_dim=None):
    """-> (model, config, label_names, extra). The model is on ``map_location`` (default CPU), eval mode.

    ``expected_labels`` (list of names) and ``expected_feature_dim`` (int) make the load fail
    with a clear error when the checkpoint was trained for another label set / backbone.
    """
    from .model import HopaDIFF  # local: keeps `import hopadiff.checkpoint` light

    ckpt = read_checkpoint(path, map_location="cpu")
    stored = ckpt["config"]
    if isinstance(stored.get("data"), dict):
        stored["data"].pop("layout", None)  # removed setting (never read); older checkpoints still load
    try:
        config = config_from_dict(stored)
    except ConfigError as e:
        raise CheckpointError(f"{path}: stored config is invalid: {e}") from e
    labels = list(ckpt["label_names"])
    if len(labels) != config.model.num_classes:
        raise CheckpointError(f"{path}: {len(labels)} label names but the model has {config.model.num_classes} classes")
    if expected_labels is not None and list(expected_labels) != labels:
        diff = next((i for i, (a, b) in enumerate(zip(labels, expected_labels, strict=False)) if a != b), None)
        raise CheckpointError(
            f"{path}: label set differs from the expected one ({len(labels)} vs {len(expected_labels)} classes"
            + (
                f", first difference at index {diff}: {labels[diff]!r} vs {expected_labels[diff]!r})"
                if diff is not None
                else ")"
            )
        )
    if expected_feature_dim is not None and config.model.feature_dim != expected_feature_dim:
        raise CheckpointError(
            f"{path}: trained on {config.model.feature_dim}-dim features, the backbone gives {expected_feature_dim}"
        )
    model = HopaDIFF(config.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the stored config: {e}") from e
    model.to(map_location or "cpu").eval()
    return model, config, labels, ckpt.get("extra", {})
