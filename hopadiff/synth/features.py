"""Synthetic feature datasets (``hopadiff-synth``'s default mode).

Writes the same data in BOTH layouts: our manifests
(``manifest/{split}.json``) and the authors' release layout (pickles + (T, Q, D) .npy).
Each sample has ``persons`` people; the target's per-frame features are class prototypes
plus a class-specific oscillation in time-since-segment-start (temporal structure a model
can learn), plus the person's appearance and noise. Holistic features mix all persons
(ambiguous on their own); partial features are the target's, with occluded spans.

Two knobs make a benchmark where the holistic branch has something to say (both 0: the data
is the same, draw for draw, as without them):
  holistic_focus F: the scene mix weights the referred person by 1/P + F (1 - 1/P) and the
    others equally by the rest, as a holistic feature conditioned on the referring text would
    (0: the plain mean of the P persons; 1: the target alone);
  crop_failure R: about a fraction R of each sample's frames has a failed target crop, in
    spans of 5-25 frames (1-5 s at 5 fps): half of the spans an occluded crop (zero features,
    flagged not visible), half a crop of another person (their features, flagged visible: a
    silent tracker swap the node cannot see).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..data import RELEASE_DIRS, write_manifest
from .vocab import COLORS, SIZES, class_names, referring_text


def label_track(T: int, C: int, overlap: float, rng: np.random.Generator, seg_len=(8, 40)) -> np.ndarray:
    """(T, C) multi-hot: consecutive segments of one primary class, sometimes a second one."""
    y = np.zeros((T, C), dtype=np.uint8)
    t = 0
    while t < T:
        n = int(rng.integers(seg_len[0], seg_len[1] + 1))
        c = int(rng.integers(C))
        y[t : t + n, c] = 1
        if C > 1 and rng.random() < overlap:
            c2 = int(rng.integers(C - 1))
            c2 += c2 >= c
            a = t + int(rng.integers(0, max(1, n // 2)))
            y[a : t + n, c2] = 1
        t += n
    return y


class FeatureWorld:
    """Class prototypes and oscillation patterns shared by every sample of one dataset."""

    def __init__(self, C: int, D: int, rng: np.random.Generator, noise: float = 0.5):
        self.noise = noise
        self.proto = rng.normal(0, 1, (C, D)).astype(np.float32)
        self.wave = rng.normal(0, 0.7, (C, D)).astype(np.float32)
        self.period = rng.uniform(4, 16, C)
        self.appearance = rng.normal(0, 0.6, (len(COLORS) * len(SIZES), D)).astype(np.float32)

    def person_features(self, y: np.ndarray, look: int, rng) -> np.ndarray:
        T, C = y.shape
        x = np.repeat(self.appearance[look][None], T, axis=0)
        for c in range(C):
            active = y[:, c].astype(bool)
            if not active.any():
                continue
            starts = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(int)])) == 1)
            since = np.zeros(T)
            for s in starts:
                e = s + np.argmin(np.concatenate([active[s:], [False]]))
                since[s:e] = np.arange(e - s)
            osc = np.sin(2 * np.pi * since / self.period[c])[:, None]
            x[active] += self.proto[c] + osc[active] * self.wave[c]
        return x + rng.normal(0, self.noise, x.shape).astype(np.float32)


def scene_weights(persons: int, focus: float) -> np.ndarray:
    """Weights of the persons (the target first) in the holistic mix; sum 1."""
    if not 0.0 <= focus <= 1.0:
        raise ValueError(f"holistic focus must be in [0, 1], got {focus}")
    if persons == 1:
        return np.ones(1)
    target = 1 / persons + focus * (1 - 1 / persons)
    return np.array([target] + [(1 - target) / (persons - 1)] * (persons - 1))


def fail_crops(partial, visible, others, rate: float, rng) -> None:
    """Spans of failed crops over about ``rate`` of the frames, in place (see the module docstring)."""
    T = len(partial)
    budget = round(rate * T)
    failed = np.zeros(T, dtype=bool)
    while failed.sum() < budget:
        n = int(rng.integers(5, 26))
        a = int(rng.integers(0, max(1, T - n + 1)))
        span = slice(a, a + n)
        failed[span] = True
        if rng.random() < 0.5 or not others:
            partial[span] = 0
            visible[span] = False
        else:
            partial[span] = others[int(rng.integers(len(others)))][span]
            visible[span] = True


def make_sample(
    world: FeatureWorld, T: int, persons: int, overlap: float, rng, holistic_focus: float = 0.0,
    crop_failure: float = 0.0,
):  # fmt: skip
    C = world.proto.shape[0]
    looks = rng.choice(len(COLORS) * len(SIZES), size=persons, replace=False)
    ys = [label_track(T, C, overlap, rng) for _ in range(persons)]
    feats = [world.person_features(y, int(lk), rng) for y, lk in zip(ys, looks, strict=True)]
    if holistic_focus:
        mix = np.tensordot(scene_weights(persons, holistic_focus), np.stack(feats), axes=1)
    else:
        mix = np.mean(feats, axis=0)
    holistic = mix + rng.normal(0, 0.3, feats[0].shape).astype(np.float32)
    visible = np.ones(T, dtype=bool)
    for _ in range(int(rng.integers(0, 3))):  # occlusions of the target
        a = int(rng.integers(0, T))
        visible[a : a + int(rng.integers(3, 15))] = False
    partial = np.where(visible[:, None], feats[0], 0).astype(np.float32)
    if crop_failure:
        fail_crops(partial, visible, feats[1:], crop_failure, rng)
    look = int(looks[0])
    text = referring_text(SIZES[look % len(SIZES)], COLORS[look // len(SIZES)])
    return holistic.astype(np.float32), partial, visible, ys[0], text


def write_feature_dataset(
    out: Path,
    num_classes=8,
    samples=(24, 6, 6),
    length=(120, 300),
    persons=3,
    overlap=0.3,
    dim=64,
    queries=4,
    seed=0,
    fps=5.0,
    noise=0.5,
    holistic_focus=0.0,
    crop_failure=0.0,
) -> dict:
    """Write both layouts under ``out``; returns a summary dict."""
    rng = np.random.default_rng(seed)
    names = class_names(num_classes)
    world = FeatureWorld(num_classes, dim, rng, noise)
    (out / "manifest").mkdir(parents=True, exist_ok=True)
    (out / "randomsplits").mkdir(parents=True, exist_ok=True)
    summary = {"classes": names, "splits": {}}
    hol_dirs, par_pattern, suffix = RELEASE_DIRS["blip2"]
    for split, n in zip(("train", "val", "test"), samples, strict=True):
        mdir = out / "manifest" / split
        mdir.mkdir(parents=True, exist_ok=True)
        hdir, pdir = out / hol_dirs[split], out / par_pattern.format(split=split)
        hdir.mkdir(exist_ok=True)
        pdir.mkdir(exist_ok=True)
        entries, actions, texts, files = [], [], [], []
        for i in range(n):
            T = int(rng.integers(length[0], length[1] + 1))
            holistic, partial, visible, y, text = make_sample(
                world, T, persons, overlap, rng, holistic_focus, crop_failure
            )
            np.save(mdir / f"{i}_holistic.npy", holistic)
            np.save(mdir / f"{i}_partial.npy", partial)
            np.save(mdir / f"{i}_visible.npy", visible)
            np.save(mdir / f"{i}_labels.npy", y)
            entries.append(
                {
                    "name": f"{split}_{i}",
                    "holistic": f"{split}/{i}_holistic.npy",
                    "partial": f"{split}/{i}_partial.npy",
                    "visible": f"{split}/{i}_visible.npy",
                    "labels": f"{split}/{i}_labels.npy",
                    "text": text,
                }
            )
            # Release layout: (T, Q, D) with the features spread over Q queries (mean = features).
            spread = rng.normal(0, 0.1, (T, queries, dim)).astype(np.float32)
            spread -= spread.mean(axis=1, keepdims=True)
            np.save(hdir / f"{i}{suffix}", holistic[:, None] + spread)
            np.save(pdir / f"{i}{suffix}", partial[:, None] + spread)
            actions.append([np.flatnonzero(row).tolist() for row in y])
            texts.append(text)
            files.append(f"/original/release/{hol_dirs[split]}/{i}{suffix}")
        write_manifest(out / "manifest" / f"{split}.json", entries, names, True, fps)
        for fname, obj in [
            (f"actions_{split}_rhas.pkl", actions),
            (f"person_ref_{split}_rhas.pkl", texts),
            (f"randomsplits/{split}_files.pkl", files),
            (f"randomsplits/{split}_anno.pkl", actions),
        ]:
            with open(out / fname, "wb") as f:
                pickle.dump(obj, f)
        summary["splits"][split] = n
    (out / "classes.txt").write_text("\n".join(names) + "\n")
    return summary
