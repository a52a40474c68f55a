"""Grounding holds on the demo's clip: the text of each of its three persons keeps that person as
the target for the whole clip, through the poses that change how a crop looks (lying, bending).

The demo's backbone recipe (a small CLIP fine-tuned contrastively on person crops and their
texts), fine-tuned for fewer steps, and the demo clip itself (same generator seed); the
pipeline's camera side runs as in the node (external boxes, the backbone on frame and crops)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipelines import make_pipeline
from tiny import tiny_model_config

import hopadiff
from hopadiff.features import load_backbone
from hopadiff.features.finetune import finetune_clip
from hopadiff.features.tiny import make_tiny_clip
from hopadiff.frames import read_frames
from hopadiff.synth.video import write_video_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("grounding_demo")
    train = write_video_dataset(out / "clips_train", clips=4, frames=160, persons=3, fps=10, seed=100)
    clip = write_video_dataset(out / "clips_demo", clips=1, frames=200, persons=3, fps=10, seed=300)  # the demo's
    make_tiny_clip(out / "clip", hidden=64, image_size=64, patch=8, projection=64, layers=2)
    finetune_clip(out / "clip", Path(train["manifest"]), steps=150)
    backbone = load_backbone("clip", str(out / "clip"), "cpu", "fp32", local_files_only=True)
    doc = json.loads(Path(clip["manifest"]).read_text())
    video = doc["videos"][0]
    frames = read_frames(Path(clip["manifest"]).parent / video["video"])
    model = hopadiff.HopaDIFF(tiny_model_config(feature_dim=backbone.feature_dim, num_classes=8)).eval()
    return backbone, model, video["persons"], frames


def targets(demo, text: str, **settings) -> list:
    backbone, model, persons, frames = demo
    pipe = make_pipeline(model, None, backbone, window=16, hop=8, min_window_frames=8, ddim_steps=1, **settings)
    pipe.set_query(text)
    out = []
    for t, frame in enumerate(frames):
        ids = [i + 1 for i, p in enumerate(persons) if p["boxes"][t]]  # the clip's person i has upstream id i + 1
        boxes = np.array([persons[i - 1]["boxes"][t] for i in ids], float).reshape(-1, 4)
        res = pipe.process(frame, t * 100_000_000, (boxes, np.ones(len(ids)), ids))
        ext = {tr.track_id: tr.external_id for tr in res.tracks}
        out.append(ext.get(res.target_id))
    return out


@pytest.mark.parametrize("person", [0, 1, 2])
def test_each_person_stays_the_target_for_the_whole_clip(demo, person):
    got = targets(demo, demo[2][person]["text"])
    wrong = [t for t, x in enumerate(got) if x != person + 1]
    assert not wrong, f"person {person + 1}: frames {wrong[:10]}... grounded to {[got[t] for t in wrong[:10]]}"


def test_a_short_memory_loses_the_lying_person(demo):
    """What the window mean fixes: with a memory of 2 frames (about the old EMA's), the tall person
    in red is lost to a bystander while lying on the floor."""
    got = targets(demo, demo[2][0]["text"], grounding_window=2, grounding_switch_frames=1)
    assert any(x not in (1, None) for x in got)
