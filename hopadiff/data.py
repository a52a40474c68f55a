"""Datasets: our manifest layout (what training reads) and the authors' RHAS133 release.

Manifest layout (JSON, one file per split, paths relative to the file):
  {"format": "hopadiff-manifest", "version": 1, "labels": [names], "multi_label": true,
   "fps": 5.0, "samples": [{"name": str, "holistic": "x.npy", "partial": "y.npy" | null,
   "visible": "v.npy" | null, "labels": "l.npy" | [[class ids of frame 0], ...],
   "text": "the person in the red shirt"}]}
  holistic/partial .npy: (T, D) or (T, Q, D) (mean-pooled over Q, e.g. BLIP-2's 32 queries);
  labels .npy: (T, C) multi-hot, or (T,) class ids for single-label data; visible: (T,) bool.

The authors' release stores labels and texts in Python pickles, and unpickling runs code:
``load_release`` reads them only when the caller passes ``trust_pickles=True`` for a folder
the user named, and ``hopadiff-convert`` turns a release into manifests once.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .frames import DataError

log = logging.getLogger(__name__)
MANIFEST_FORMAT = "hopadiff-manifest"


@dataclass
class Sample:
    name: str
    holistic: np.ndarray  # (T, D) float32
    partial: np.ndarray  # (T, D) float32, zero where not visible
    visible: np.ndarray  # (T,) bool: the target person was found in the frame
    labels: np.ndarray  # (T, C) float32 multi-hot, or (T,) int64 class ids
    text: str

    @property
    def num_frames(self) -> int:
        return self.holistic.shape[0]


def _load_features(path: Path) -> np.ndarray:
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read features {path}: {e}") from e
    if x.ndim == 3:  # (T, Q, D): mean over queries (BLIP-2 Q-Former)
        x = x.mean(axis=1)
    if x.ndim != 2:
        raise DataError(f"features {path} have shape {x.shape}; expected (T, D) or (T, Q, D)")
    if not np.isfinite(x).all():
        raise DataError(f"features {path} contain NaN or inf")
    return np.asarray(x, dtype=np.float32)


def frame_lists_to_multihot(frames, num_classes: int, where: str) -> np.ndarray:
    """Per-frame lists of class ids -> (T, C) float32 multi-hot; ids out of range raise."""
    out = np.zeros((len(frames), num_classes), dtype=np.float32)
    for t, ids in enumerate(frames):
        ids = [ids] if isinstance(ids, int | np.integer) else list(ids)
        for c in ids:
            if not 0 <= int(c) < num_classes:
                raise DataError(f"{where}: frame {t} has label index {c} outside 0..{num_classes - 1}")
            out[t, int(c)] = 1.0
    return out


def make_sample(name, holistic, partial, visible, labels, text, where, multi_label=True, num_classes=None) -> Sample:
    """Validate and assemble one sample (shared by both layouts)."""
    T = holistic.shape[0]
    if T == 0:
        raise DataError(f"{where}: sample {name!r} is empty (0 frames)")
    missing_partial = partial is None
    if missing_partial:
        partial = np.zeros_like(holistic)
        visible = np.zeros(T, dtype=bool)
    if partial.shape != holistic.shape:
        raise DataError(f"{where}: partial features {partial.shape} do not match holistic {holistic.shape}")
    visible = np.ones(T, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    if visible.shape != (T,):
        raise DataError(f"{where}: visibility mask {visible.shape} does not match {T} frames")
    labels = np.asarray(labels)
    if labels.shape[0] < T:
        raise DataError(f"{where}: {labels.shape[0]} label frames for {T} feature frames")
    labels = labels[:T]
    if multi_label:
        if labels.ndim != 2 or (num_classes is not None and labels.shape[1] != num_classes):
            raise DataError(f"{where}: multi-label labels must be (T, {num_classes}), got {labels.shape}")
        labels = labels.astype(np.float32)
    else:
        if labels.ndim != 1:
            raise DataError(f"{where}: single-label labels must be (T,), got {labels.shape}")
        if num_classes is not None and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataError(f"{where}: label index outside 0..{num_classes - 1}")
        labels = labels.astype(np.int64)
    partial = np.where(visible[:, None], partial, 0).astype(np.float32)
    return Sample(str(name), holistic, partial, visible, labels, str(text))


# ----------------------------------------------------------------------------- manifest
def load_manifest(path: str | Path) -> tuple[list[Sample], dict]:
    """-> (samples, meta) where meta has labels, multi_label, fps, holistic_text. Warns about missing partials."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"cannot read manifest {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise DataError(f"manifest {path} is not valid JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise DataError(f"{path} is not a hopadiff manifest (format != {MANIFEST_FORMAT!r})")
    names = doc.get("labels")
    multi = bool(doc.get("multi_label", True))
    if not isinstance(names, list) or not names:
        raise DataError(f"{path}: 'labels' must list the class names")
    C = len(names)
    base = path.parent
    samples, missing = [], 0
    for i, entry in enumerate(doc.get("samples", [])):
        where = f"{path} sample {i} ({entry.get('name', '?')})"
        holistic = _load_features(base / entry["holistic"])
        partial = None
        if entry.get("partial"):
            ppath = base / entry["partial"]
            if ppath.exists():
                partial = _load_features(ppath)
            else:
                missing += 1
        else:
            missing += 1
        visible = np.load(base / entry["visible"]) if entry.get("visible") else None
        raw = entry.get("labels")
        if isinstance(raw, str):
            try:
                labels = np.load(base / raw, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise DataError(f"{where}: cannot read labels {base / raw}: {e}") from e
            if multi and labels.ndim == 2 and labels.shape[1] != C:
                raise DataError(f"{where}: labels {base / raw} have {labels.shape[1]} classes, manifest lists {C}")
        elif isinstance(raw, list):
            labels = frame_lists_to_multihot(raw, C, where) if multi else np.asarray(raw, dtype=np.int64)
        else:
            raise DataError(f"{where}: 'labels' must be a .npy path or per-frame lists")
        if multi and labels.ndim == 2 and ((labels != 0) & (labels != 1)).any():
            raise DataError(f"{where}: multi-hot labels must be 0/1")
        samples.append(
            make_sample(
                entry.get("name", i), holistic, partial, visible, labels, entry.get("text", ""), where, multi, C
            )
        )
    if missing:
        log.warning(
            "%s: %d of %d samples have no partial (target-crop) features; their frames are "
            "marked invisible (partial branch sees zeros), never filled with holistic features",
            path,
            missing,
            len(samples),
        )
    if not samples:
        raise DataError(f"manifest {path} lists no samples")
    return samples, {
        "labels": names,
        "multi_label": multi,
        "fps": float(doc.get("fps", 0.0)),
        "holistic_text": bool(doc.get("holistic_text", False)),
        "backbone": str(doc.get("backbone", "")),
        "missing_partial": missing,
    }


def write_manifest(
    path: str | Path,
    entries: list[dict],
    labels: list[str],
    multi_label: bool = True,
    fps: float = 0.0,
    holistic_text: bool = False,
    backbone: str = "",
) -> None:
    """Write a manifest atomically (entries' paths relative to the manifest's folder).

    ``holistic_text``: the holistic features were computed with each sample's referring text
    (BLIP-2's image-text-matching path), so they are per referred person."""
    path = Path(path)
    doc = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "labels": list(labels),
        "multi_label": multi_label,
        "fps": fps,
        "holistic_text": holistic_text,
        "backbone": backbone,
        "samples": entries,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def load_split(root: str | Path, split: str) -> tuple[list[Sample], dict]:
    """``{root}/{split}.json``."""
    return load_manifest(Path(root) / f"{split}.json")


# ----------------------------------------------------------------------------- release
# What ``hopadiff-extract`` reads: videos, per-person boxes, texts and labels (synth --video writes it).
EXTRACT_FORMAT = "hopadiff-extract-manifest"
RELEASE_DIRS = {
    # backbone -> (holistic folder per split, partial folder per split, file suffix)
    "blip2": (
        {"train": "RHAS_feature_blipv2", "val": "RHAS_feature_blipv2_val", "test": "RHAS_feature_blipv2_test"},
        "RHAS_feature_blipv2_{split}_grounding_dino",
        "_blip_feat.npy",
    ),
    "clip": (
        {s: f"RHAS_feature_clip_{s}" for s in ("train", "val", "test")},
        "RHAS_feature_clip_{split}_grounding_dino",
        "_clip_feat.npy",
    ),
}


def _read_pickle(path: Path, trust: bool):
    if not trust:
        raise DataError(
            f"{path} is a Python pickle, and loading a pickle can run code; pass "
            "trust_pickles=True (CLI: --trust-pickles) only for a release you downloaded yourself"
        )
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from e


def load_release(
    root: str | Path,
    split: str,
    protocol: str = "cross_movie",
    backbone: str = "blip2",
    num_classes: int = 137,
    trust_pickles: bool = False,
) -> list[Sample]:
    """The authors' RHAS133 release as-is (layout: the README's RHAS133 section and ``RELEASE_DIRS``).

    cross_movie: actions_{split}_rhas.pkl + person_ref_{split}_rhas.pkl; features
      {holistic folder}/{index}{suffix} and {partial folder}/{index}{suffix}.
    random: randomsplits/{split}_files.pkl (feature paths; only the folder and file name are
      used, re-rooted at ``root``) + randomsplits/{split}_anno.pkl.
    """
    root = Path(root)
    if backbone not in RELEASE_DIRS:
        raise DataError(f"unknown backbone {backbone!r}; allowed: {', '.join(RELEASE_DIRS)}")
    hol_dirs, par_pattern, suffix = RELEASE_DIRS[backbone]
    if protocol == "cross_movie":
        actions = _read_pickle(root / f"actions_{split}_rhas.pkl", trust_pickles)
        ref_path = root / f"person_ref_{split}_rhas.pkl"
        texts = _read_pickle(ref_path, trust_pickles) if ref_path.exists() else [""] * len(actions)
        hol_dir = root / hol_dirs[split]
        if not hol_dir.is_dir():
            raise DataError(f"holistic feature folder {hol_dir} does not exist")
        pattern = re.compile(r"^(\d+)" + re.escape(suffix) + "$")
        indices = sorted(int(m.group(1)) for f in os.listdir(hol_dir) if (m := pattern.match(f)))
        files = [
            (i, hol_dir / f"{i}{suffix}", root / par_pattern.format(split=split) / f"{i}{suffix}") for i in indices
        ]
    elif protocol == "random":
        listed = _read_pickle(root / "randomsplits" / f"{split}_files.pkl", trust_pickles)
        actions = _read_pickle(root / "randomsplits" / f"{split}_anno.pkl", trust_pickles)
        texts = [""] * len(actions)
        files = []
        for i, original in enumerate(listed):
            folder, fname = Path(original).parent.name, Path(original).name
            split_of = next((s for s, d in hol_dirs.items() if d == folder), split)
            files.append((i, root / folder / fname, root / par_pattern.format(split=split_of) / fname))
    else:
        raise DataError(f"unknown protocol {protocol!r}; allowed: cross_movie, random")
    samples, missing = [], 0
    for index, hol_path, par_path in files:
        if index >= len(actions):
            raise DataError(f"{hol_path}: sample index {index} but the label pickle has {len(actions)} entries")
        holistic = _load_features(hol_path)
        partial = _load_features(par_path) if par_path.exists() else None
        missing += partial is None
        labels = frame_lists_to_multihot(actions[index], num_classes, str(hol_path))
        samples.append(
            make_sample(
                str(index),
                holistic,
                partial,
                None,
                labels,
                texts[index] if index < len(texts) else "",
                str(hol_path),
                True,
                num_classes,
            )
        )
    if missing:
        log.warning(
            "%s/%s: %d of %d samples have no partial features in %s; those frames are marked invisible",
            root,
            split,
            missing,
            len(samples),
            par_pattern.format(split=split),
        )
    if not samples:
        raise DataError(f"no samples found for split {split!r} under {root}")
    return samples


# ----------------------------------------------------------------------------- windows
class WindowSampler:
    """Random training windows of W frames with temporal (speed) augmentation.

    A crop of round(W * s) frames, s ~ U(speed range), is resampled to W frames by nearest
    index, so one training window has exactly the node's W. Samples shorter than the crop
    are stretched. Randomness comes only from the generator passed to ``batch`` (resumable).
    """

    def __init__(self, samples: list[Sample], window: int, speed_range=(1.0, 1.0), multi_label: bool = True):
        if window < 2:
            raise ValueError(f"window must be >= 2 frames, got {window}")
        self.samples, self.window, self.speed_range, self.multi_label = samples, window, speed_range, multi_label

    def window_indices(self, T: int, gen: torch.Generator) -> np.ndarray:
        lo, hi = self.speed_range
        speed = lo + (hi - lo) * float(torch.rand((), generator=gen))
        length = min(T, max(2, round(self.window * speed)))
        start = int(torch.randint(0, T - length + 1, (), generator=gen))
        return np.rint(np.linspace(start, start + length - 1, self.window)).astype(np.int64)

    def batch(self, size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        picks = torch.randint(0, len(self.samples), (size,), generator=gen).tolist()
        hol, par, vis, lab = [], [], [], []
        for i in picks:
            s = self.samples[i]
            idx = self.window_indices(s.num_frames, gen)
            hol.append(np.asarray(s.holistic[idx]).T)
            par.append(np.asarray(s.partial[idx]).T)
            vis.append(s.visible[idx])
            lab.append(s.labels[idx].T if self.multi_label else s.labels[idx])
        return {
            "holistic": torch.from_numpy(np.stack(hol)),  # (B, D, W)
            "partial": torch.from_numpy(np.stack(par)),
            "visible": torch.from_numpy(np.stack(vis)),  # (B, W)
            "labels": torch.from_numpy(np.stack(lab)),  # (B, C, W) or (B, W)
        }


def whole_sample(sample: Sample, multi_label: bool = True) -> dict[str, torch.Tensor]:
    """One sample, every frame, as a batch of one (DiffAct trains on whole videos, batch 1)."""
    return {
        "holistic": torch.from_numpy(np.ascontiguousarray(np.asarray(sample.holistic).T)[None]),  # (1, D, T)
        "partial": torch.from_numpy(np.ascontiguousarray(np.asarray(sample.partial).T)[None]),
        "visible": torch.from_numpy(np.asarray(sample.visible)[None]),  # (1, T)
        "labels": torch.from_numpy(np.ascontiguousarray(sample.labels.T if multi_label else sample.labels)[None]),
    }
