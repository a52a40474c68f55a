"""hopadiff-extract on a short generated video with tiny BLIP-2 and CLIP models loaded by path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from train_util import run_main

from hopadiff.data import load_manifest
from hopadiff.features import load_backbone
from hopadiff.features.extract import main as extract_main
from hopadiff.synth.video import write_video_dataset


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    write_video_dataset(root, clips=1, frames=24, persons=2, fps=10)
    return root


def _extract(clip_dir, out, kind, model_dir, *extra):
    return run_main(
        extract_main,
        clip_dir / "extract.json",
        "--out",
        out,
        "--backbone",
        kind,
        "--model",
        model_dir,
        "--local-files-only",
        "--device",
        "cpu",
        *extra,
    )


@pytest.mark.parametrize(
    ("kind", "dim", "folder"),
    [("clip", 24, "RHAS_feature_clip_train"), ("blip2", 32, "RHAS_feature_blipv2")],
)
def test_extract_end_to_end(tmp_path, clip_dir, tiny_models, kind, dim, folder):
    model_dir = tiny_models[kind]
    out = tmp_path / "features"
    res = _extract(clip_dir, out, kind, model_dir, "--batch-size", "8")
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout[res.stdout.index("{") :])
    conditioned = kind == "blip2"  # default: holistic features conditioned on the text whenever the backbone can
    assert summary == {
        "samples": 2,
        "extracted": 2,
        "skipped": 0,
        "feature_dim": dim,
        "holistic_text": conditioned,
        "manifest": str(out / "train.json"),
    }
    samples, meta = load_manifest(out / "train.json")
    assert len(samples) == 2 and samples[0].holistic.shape == (24, dim) and meta["holistic_text"] == conditioned
    assert meta["backbone"] == kind  # training stores it in the checkpoint; the node checks it first
    # Same frames: the same holistic features, unless each person's text conditions them.
    assert np.allclose(samples[0].holistic, samples[1].holistic) != conditioned
    assert not np.allclose(samples[0].partial, samples[1].partial)  # different persons' crops
    assert samples[0].text.startswith("the ") and meta["labels"][0] == "walking"
    assert (out / folder / f"0_{'clip' if kind == 'clip' else 'blip'}_feat.npy").exists()
    # The same code path the node uses online gives the same features.
    backbone = load_backbone(kind, str(model_dir), "cpu", local_files_only=True)
    from hopadiff.frames import read_frames

    frame = read_frames(clip_dir / "clip0.mp4")[3]
    online = backbone.encode_images([frame], samples[0].text if conditioned else None).features.numpy()[0]
    np.testing.assert_allclose(online, samples[0].holistic[3], rtol=1e-4, atol=1e-5)
    # Resumable: a rerun skips both samples and leaves the files untouched.
    before = (out / folder).stat().st_mtime_ns, sorted(p.stat().st_mtime_ns for p in (out / folder).iterdir())
    res = _extract(clip_dir, out, kind, model_dir)
    assert res.returncode == 0 and '"skipped": 2' in res.stdout
    assert sorted(p.stat().st_mtime_ns for p in (out / folder).iterdir()) == before[1]


def test_holistic_text_conditioning(tiny_models):
    """BLIP-2's ITM path: the text changes the image features; CLIP refuses a text."""
    b = load_backbone("blip2", str(tiny_models["blip2"]), "cpu", local_files_only=True)
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8) for i in range(3)]
    plain = b.encode_images(frames).features
    red = b.encode_images(frames, "the tall person in the red shirt").features
    blue = b.encode_images(frames, "the short person in the blue shirt").features
    assert plain.shape == red.shape == (3, 32)
    assert not torch.allclose(red, blue) and not torch.allclose(red, plain)
    torch.testing.assert_close(b.encode_images(frames[:1], "the tall person in the red shirt").features, red[:1])
    c = load_backbone("clip", str(tiny_models["clip"]), "cpu", local_files_only=True)
    with pytest.raises(ValueError, match="cannot condition image features on a text"):
        c.encode_images(frames, "the tall person")


def test_missing_local_model_is_a_clear_error(tmp_path, clip_dir):
    res = run_main(
        extract_main,
        clip_dir / "extract.json",
        "--out",
        tmp_path / "o",
        "--backbone",
        "clip",
        "--model",
        tmp_path / "nothing_here",
        "--local-files-only",
    )
    assert res.returncode == 2 and "cannot load clip backbone" in res.stderr


def test_text_embeddings_and_similarity(tiny_models):
    b = load_backbone("clip", str(tiny_models["clip"]), "cpu", local_files_only=True)
    t = b.encode_texts(["the tall person in the red shirt", "ü ☃ 👴 unknown words"])
    assert t.shape == (2, 24)
    np.testing.assert_allclose(t.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    enc = b.encode_images([np.zeros((40, 20, 3), np.uint8), np.full((10, 90, 3), 255, np.uint8)])
    sim = b.similarity(enc.joint, t[0])
    assert sim.shape == (2,) and (sim.abs() <= 1 + 1e-5).all()
    with pytest.raises(ValueError, match="image 0: expected a non-empty RGB"):
        b.encode_images([np.zeros((0, 5, 3), np.uint8)])


def test_splits_extracted_into_one_folder_keep_their_own_labels(tmp_path, tiny_models):
    """train, val and test into one --out: every sample's labels and visibility are its own
    (the first version wrote labels/{i}.npy per split and val/test overwrote train's)."""
    out = tmp_path / "features"
    sources = {}
    for seed, split in enumerate(("train", "val", "test")):
        clips = tmp_path / split
        write_video_dataset(clips, clips=1, frames=12, persons=2, fps=10, seed=100 + seed)
        res = _extract(clips, out, "clip", tiny_models["clip"], "--split", split)
        assert res.returncode == 0, res.stderr[-2000:]
        sources[split] = json.loads((clips / "extract.json").read_text())
    for split, doc in sources.items():
        samples, meta = load_manifest(out / f"{split}.json")
        persons = [p for v in doc["videos"] for p in v["persons"]]
        assert len(samples) == len(persons)
        for sample, person in zip(samples, persons, strict=True):
            expected = np.zeros((12, len(meta["labels"])), np.uint8)
            for t, ids in enumerate(person["labels"]):
                expected[t, ids] = 1
            np.testing.assert_array_equal(sample.labels, expected, err_msg=f"{split} {sample.name}")
            assert sample.text == person["text"]
    # Rerun: idempotent. A changed source for an extracted split: refused, nothing overwritten.
    before = {p: p.read_bytes() for p in sorted((out / "labels").iterdir())}
    assert _extract(tmp_path / "val", out, "clip", tiny_models["clip"], "--split", "val").returncode == 0
    res = _extract(tmp_path / "test", out, "clip", tiny_models["clip"], "--split", "val")
    assert res.returncode == 2 and "from an earlier extraction" in res.stderr
    assert {p: p.read_bytes() for p in sorted((out / "labels").iterdir())} == before


def test_a_backbone_neither_on_disk_nor_cached_fails_at_once_with_what_to_do():
    """Refused from the name alone: the hub is not asked (the message says so, and how to fetch it);
    how long it takes is docs/benchmarks.md's."""
    from hopadiff.features import load_backbone

    with pytest.raises(ValueError, match="not a local folder, not in the hub cache, and the hub was not asked"):
        load_backbone("clip", "demo_out/no_such_backbone", "cpu", local_files_only=True)
