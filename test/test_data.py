"""Data: manifest and release loaders on a synthetic dataset, malformed inputs, windows."""

from __future__ import annotations

import logging
import pickle
import shutil

import numpy as np
import pytest
import torch

from hopadiff.data import DataError, WindowSampler, load_manifest, load_release, load_split
from hopadiff.synth.features import write_feature_dataset
from hopadiff.windows import StitchedProbabilities, window_starts

C, D = 5, 16


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    write_feature_dataset(root, num_classes=C, samples=(4, 2, 2), length=(30, 50), persons=2, dim=D, seed=1)
    return root


@pytest.fixture
def release(synth, tmp_path):
    """A private copy of the dataset that a test may damage."""
    dst = tmp_path / "release"
    shutil.copytree(synth, dst)
    return dst


@pytest.mark.parametrize("protocol", ["cross_movie", "random"])
def test_release_matches_manifest(synth, protocol):
    ours, meta = load_manifest(synth / "manifest" / "val.json")
    theirs = load_release(synth, "val", protocol, "blip2", num_classes=C, trust_pickles=True)
    assert meta["labels"][:2] == ["walking", "running"] and len(theirs) == len(ours) == 2
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(b.holistic, a.holistic, atol=1e-5)  # (T, Q, D) mean-pooled over queries
        np.testing.assert_array_equal(b.labels, a.labels)
        assert a.holistic.shape[1] == D and a.labels.shape[1] == C
    if protocol == "cross_movie":  # the random partition ships no referring texts
        assert theirs[0].text == ours[0].text and "shirt" in theirs[0].text


def test_pickles_need_explicit_trust(synth):
    with pytest.raises(DataError, match="actions_val_rhas.pkl is a Python pickle"):
        load_release(synth, "val", num_classes=C)


def test_shape_mismatch_names_the_file(release):
    np.save(release / "RHAS_feature_blipv2_val_grounding_dino" / "1_blip_feat.npy", np.zeros((10, 4, D), np.float32))
    with pytest.raises(DataError, match=r"RHAS_feature_blipv2_val/1_blip_feat.npy.*partial features \(10, 16\)"):
        load_release(release, "val", num_classes=C, trust_pickles=True)


def test_label_index_out_of_range_names_file_and_frame(release):
    with open(release / "actions_val_rhas.pkl", "rb") as f:
        actions = pickle.load(f)
    actions[0][3] = [99]
    with open(release / "actions_val_rhas.pkl", "wb") as f:
        pickle.dump(actions, f)
    with pytest.raises(DataError, match=r"0_blip_feat.npy: frame 3 has label index 99 outside 0..4"):
        load_release(release, "val", num_classes=C, trust_pickles=True)


def test_missing_partial_uses_mask_and_warns(release, caplog):
    (release / "RHAS_feature_blipv2_val_grounding_dino" / "0_blip_feat.npy").unlink()
    with caplog.at_level(logging.WARNING, logger="hopadiff.data"):
        samples = load_release(release, "val", num_classes=C, trust_pickles=True)
    assert "1 of 2 samples have no partial features" in caplog.text
    s = samples[0]
    assert not s.visible.any() and not s.partial.any(), "missing partial must be masked, not copied from holistic"
    assert samples[1].partial.any()


def test_empty_sample_is_rejected(release):
    np.save(release / "RHAS_feature_blipv2_val" / "1_blip_feat.npy", np.zeros((0, 4, D), np.float32))
    np.save(release / "RHAS_feature_blipv2_val_grounding_dino" / "1_blip_feat.npy", np.zeros((0, 4, D), np.float32))
    with pytest.raises(DataError, match="is empty"):
        load_release(release, "val", num_classes=C, trust_pickles=True)


def test_nan_features_are_rejected(release):
    x = np.load(release / "manifest" / "val" / "0_holistic.npy")
    x[2, 3] = np.nan
    np.save(release / "manifest" / "val" / "0_holistic.npy", x)
    with pytest.raises(DataError, match="0_holistic.npy contain NaN"):
        load_manifest(release / "manifest" / "val.json")


def test_manifest_with_inline_labels_and_missing_partial(tmp_path, caplog):
    import json

    np.save(tmp_path / "h.npy", np.ones((6, 3), np.float32))
    doc = {
        "format": "hopadiff-manifest",
        "version": 1,
        "labels": ["a", "b"],
        "multi_label": True,
        "samples": [
            {
                "name": "s",
                "holistic": "h.npy",
                "partial": "gone.npy",
                "labels": [[0], [0], [0, 1], [1], [1], []],
                "text": "x",
            }
        ],
    }
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        (s,), _meta = load_manifest(tmp_path / "m.json")
    assert s.labels.tolist() == [[1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [0, 0]]
    assert "1 of 1 samples have no partial" in caplog.text and not s.visible.any()
    doc["samples"][0]["labels"][2] = [0, 7]
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="frame 2 has label index 7"):
        load_manifest(tmp_path / "m.json")


def test_window_sampler_is_reproducible_and_in_bounds(synth):
    samples, _ = load_manifest(synth / "manifest" / "train.json")
    sampler = WindowSampler(samples, window=24, speed_range=(0.8, 1.25))
    a = sampler.batch(6, torch.Generator().manual_seed(0))
    b = sampler.batch(6, torch.Generator().manual_seed(0))
    assert a["holistic"].shape == (6, D, 24) and a["labels"].shape == (6, C, 24) and a["visible"].shape == (6, 24)
    for k in a:
        assert torch.equal(a[k], b[k])
    idx = sampler.window_indices(30, torch.Generator().manual_seed(3))
    assert idx.min() >= 0 and idx.max() < 30 and (np.diff(idx) >= 0).all()
    assert len(sampler.window_indices(5, torch.Generator())) == 24  # short sample is stretched


def test_windows_cover_and_stitch():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(3, 4, 2) == [0]
    st = StitchedProbabilities(1, 6)
    st.add(0, np.ones((1, 4)))
    st.add(2, np.zeros((1, 4)))
    np.testing.assert_allclose(st.mean()[0], [1, 1, 0.5, 0.5, 0, 0])


def test_convert_keeps_the_datasets_own_class_names(synth, tmp_path):
    """hopadiff-convert on a synthetic release: the manifests carry the data's classes (its
    classes.txt), not RHAS133's 137 names; samples match the release."""
    from hopadiff.convert import main as convert_main

    out = tmp_path / "converted"
    assert convert_main(["--root", str(synth), "--out", str(out), "--trust-pickles"]) == 0
    samples, meta = load_manifest(out / "val.json")
    assert meta["labels"] == (synth / "classes.txt").read_text().split("\n")[:C] and meta["backbone"] == "blip2"
    ours, _ = load_manifest(synth / "manifest" / "val.json")
    for a, b in zip(ours, samples, strict=True):
        np.testing.assert_array_equal(a.labels, b.labels)
    assert convert_main(["--root", str(synth), "--out", str(out), "--trust-pickles", "--labels", "/nope"]) == 2


def test_synth_knobs_focus_the_scene_and_fail_crops(tmp_path):
    """hopadiff-synth's --holistic-focus / --crop-failure: at 0 the data is today's, draw for draw;
    focus moves the holistic mix toward the referred person; crop failures cover about R of the
    frames (half occluded and flagged, half another person's features, flagged visible)."""
    from hopadiff.synth.features import scene_weights

    assert np.allclose(scene_weights(4, 0.0), 0.25) and np.allclose(scene_weights(4, 1.0), [1, 0, 0, 0])
    runs = {}
    for name, knobs in {"plain": {}, "zero": {"holistic_focus": 0.0, "crop_failure": 0.0},
                        "focus": {"holistic_focus": 0.8}, "fail": {"crop_failure": 0.3}}.items():  # fmt: skip
        write_feature_dataset(tmp_path / name, samples=(6, 1, 1), persons=4, noise=0.1, seed=5, **knobs)
        runs[name] = load_split(tmp_path / name / "manifest", "train")[0]
    for a, b in zip(runs["plain"], runs["zero"], strict=True):
        assert np.array_equal(a.holistic, b.holistic) and np.array_equal(a.partial, b.partial)
    # The first sample's persons are drawn before any knob acts: the same target, other mixes.
    plain, focus, fail = runs["plain"][0], runs["focus"][0], runs["fail"][0]
    seen = plain.visible

    def closeness(s):  # mean distance of the holistic feature to the target's (visible frames)
        return np.linalg.norm(np.asarray(s.holistic)[seen] - np.asarray(plain.partial)[seen], axis=1).mean()

    assert closeness(focus) < 0.5 * closeness(plain)
    changed = np.abs(np.asarray(fail.partial) - np.asarray(plain.partial)).sum(1) > 1e-6
    assert 0.2 < changed.mean() < 0.45
    swapped = changed & fail.visible  # another person's crop, not flagged
    occluded = changed & ~fail.visible
    assert swapped.any() and occluded.any()
    assert not np.asarray(fail.partial)[occluded].any()
