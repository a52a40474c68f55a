"""Property-based fuzzing of the ROS-free entry points the node feeds with untrusted input:
whatever arrives, decoding fails only with ImageDecodeError, the pipeline never raises, and
memory stays bounded."""

from __future__ import annotations

import os
from functools import lru_cache

import cv2
import numpy as np
import pytest
from footage import VTEST, pan, vtest_frames
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipelines import make_pipeline
from tiny import tiny_model_config

import hopadiff
from hopadiff.features import load_backbone
from hopadiff.image_codec import SUPPORTED, ImageDecodeError, decode_compressed, decode_raw
from rhas_ros.conversions import roi

# 150 examples per property opt-in (RHAS_SLOW_TESTS=1); 50 in CI, which keeps the suite under 3 min.
EXAMPLES = 150 if os.environ.get("RHAS_SLOW_TESTS") == "1" else 50
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAX_PIXELS = 64 * 64


@FUZZ
@given(
    encoding=st.one_of(st.sampled_from(SUPPORTED), st.text(max_size=30)),
    height=st.integers(-2, 80),
    width=st.integers(-2, 80),
    step=st.integers(-2, 400),
    data=st.binary(max_size=20000),
    bigendian=st.booleans(),
)
def test_raw_decoding_fails_only_with_a_decode_error(encoding, height, width, step, data, bigendian):
    try:
        rgb = decode_raw(encoding, height, width, step, data, bigendian, max_pixels=MAX_PIXELS)
    except ImageDecodeError:
        return
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


def _encoded(fmt: str) -> bytes:
    img = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    return cv2.imencode(fmt, img)[1].tobytes()


@FUZZ
@given(
    base=st.sampled_from([_encoded(".png"), _encoded(".jpg"), b""]),
    cuts=st.lists(st.tuples(st.integers(0, 3000), st.binary(min_size=1, max_size=8)), max_size=6),
    truncate=st.integers(0, 3000),
)
def test_compressed_decoding_fails_only_with_a_decode_error(base, cuts, truncate):
    data = bytearray(base)
    for pos, junk in cuts:  # overwrite bytes anywhere, headers included
        data[pos : pos + len(junk)] = junk
    data = bytes(data[: truncate or None])
    try:
        rgb = decode_compressed(data, "jpeg", max_pixels=MAX_PIXELS)
    except ImageDecodeError:
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS


@pytest.fixture(scope="module")
def pipeline(tiny_models):
    backbone = load_backbone("clip", str(tiny_models["clip"]), "cpu", local_files_only=True)
    model = hopadiff.HopaDIFF(tiny_model_config(feature_dim=backbone.feature_dim)).eval()
    return make_pipeline(model, None, backbone, window=8, hop=4, min_window_frames=2, ddim_steps=1, max_boxes=16,
                         segment_all_persons=True)  # fmt: skip


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@FUZZ
@given(
    boxes=st.lists(st.tuples(finite_or_not, finite_or_not, finite_or_not, finite_or_not), max_size=40),
    scores=st.lists(finite_or_not, max_size=40),
    ids=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=40),
    text=st.text(max_size=300),
    stamp=st.integers(0, 2**63 - 1),
)
def test_pipeline_takes_any_boxes_texts_and_stamps(pipeline, boxes, scores, ids, text, stamp):
    frame = np.full((48, 64, 3), 100, np.uint8)
    query, _ = pipeline.set_query(text)
    assert len(query) <= pipeline.config.settings.max_text_chars and all(ch.isprintable() for ch in query)
    n = len(boxes)
    persons = (np.array(boxes, dtype=np.float64).reshape(-1, 4), np.array((scores + [1.0] * n)[:n]), None)
    if len(ids) >= n:
        persons = (persons[0], persons[1], ids[:n])
    result = pipeline.process(frame, stamp, persons)
    s = pipeline.config.settings
    assert len(result.tracks) <= s.max_boxes
    assert pipeline.memory_frames() <= pipeline.config.stream.window * (1 + s.max_boxes)


finite = st.floats(-500, 1500, allow_nan=False, allow_infinity=False)
detection = st.tuples(finite, finite, st.floats(1, 400), st.floats(1, 400), st.floats(0, 1))


@FUZZ
@given(
    frames=st.lists(st.lists(detection, max_size=8), min_size=1, max_size=25),
    with_embeddings=st.booleans(),
    with_ids=st.booleans(),
    gaps=st.lists(st.integers(1, 30), min_size=25, max_size=25),
)
def test_tracker_invariants_hold_for_any_detections(frames, with_embeddings, with_ids, gaps):
    """Whatever the detector gives (sane boxes: the pipeline drops the rest first): reported tracks
    are confirmed, with unique ids that never come back after being dropped, at most max_tracks,
    and a matched track points at its own detection, one detection per track."""
    from rhas_ros.core.tracking import Detections, PersonTracker, TrackerParams

    tracker = PersonTracker(TrackerParams(max_tracks=6, lost_seconds=0.5))
    rng = np.random.default_rng(0)
    stamp, dropped, seen = 0, set(), set()
    for dets, gap in zip(frames, gaps, strict=False):
        stamp += gap * 50_000_000
        boxes = np.array([d[:4] for d in dets]).reshape(-1, 4)
        scores = np.array([d[4] for d in dets])
        embs = [rng.normal(size=8) if rng.random() > 0.2 else None for _ in dets] if with_embeddings else None
        ids = [int(i) for i in rng.integers(0, 4, len(dets))] if with_ids else None
        tracks = tracker.update(Detections.of(boxes, scores, ids, embs), stamp)
        now = {t.track_id for t in tracks}
        assert len(now) == len(tracks) <= 6 and all(t.track_id > 0 for t in tracks)
        assert not now & dropped, "an id that was dropped came back"
        dropped |= seen - now
        seen |= now
        matched = [t.detection for t in tracks if t.missed == 0]
        assert len(set(matched)) == len(matched) and all(0 <= d < len(dets) for d in matched)
        assert all(t.detection is None for t in tracks if t.missed > 0)
        for t in tracks:
            if t.missed == 0:
                assert np.allclose(t.box, boxes[t.detection])


@lru_cache(maxsize=1)
def real_frames() -> list[np.ndarray]:
    return [pan(k) for k in range(0, 150, 15)] + (vtest_frames(0, 12, step=66) if VTEST.exists() else [])


@pytest.fixture(scope="module")
def pipelines(tiny_models):
    """The node's pipeline (everyone mode) with each detector it can run here."""
    from rhas_ros.core.detectors import make_detector

    backbone = load_backbone("clip", str(tiny_models["clip"]), "cpu", local_files_only=True)
    model = hopadiff.HopaDIFF(tiny_model_config(feature_dim=backbone.feature_dim)).eval()
    return {name: make_pipeline(model, None, backbone, make_detector(name), window=8, hop=4,
                                min_window_frames=2, ddim_steps=1, max_boxes=16, segment_all_persons=True)
            for name in ("hog", "full_frame", "external")}  # fmt: skip


def test_a_track_outside_a_smaller_frame_is_published_inside_it():
    """A track kept from a larger frame (the camera changed resolution) or predicted past the edge:
    its RegionOfInterest is cut to the image (found by the real-footage property below)."""
    r = roi((298.5, 60.8, 54.6, 108.5), 165, 120)
    assert (r.x_offset, r.width) == (165, 0) and r.y_offset + r.height <= 120
    r = roi((150.0, 100.0, 40.0, 40.0), 165, 120)
    assert (r.x_offset, r.y_offset, r.width, r.height) == (150, 100, 15, 20)


@FUZZ
@given(
    frame=st.integers(0, 99),
    scale=st.floats(0.05, 1.5),
    name=st.sampled_from(["hog", "full_frame", "external"]),
    boxes=st.lists(st.tuples(finite_or_not, finite_or_not, finite_or_not, finite_or_not), max_size=12),
    stamp=st.integers(0, 2**62),
)
def test_the_pipeline_takes_real_footage_with_every_detector(pipelines, frame, scale, name, boxes, stamp):
    """A real frame (test/helpers/footage.py: the panned vtest photo, and vtest.avi itself where
    opencv-doc is installed) at any scale through the pipeline with hog, full_frame or external boxes
    (any, NaN and outside the image included): it never raises, and every track is published as a
    finite box inside the image."""
    real = real_frames()
    rgb = cv2.resize(real[frame % len(real)], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    pipelines[name].reset()  # each example on its own (hypothesis replays examples: no state between them)
    persons = None
    if name == "external":
        persons = (np.array(boxes, dtype=np.float64).reshape(-1, 4), np.ones(len(boxes)), None)
    result = pipelines[name].process(rgb, stamp, persons)
    H, W = rgb.shape[:2]
    for t in result.tracks:
        r = roi(t.box, W, H)  # what tracked_persons carries
        assert np.isfinite(t.box).all() and r.x_offset + r.width <= W and r.y_offset + r.height <= H, (t.box, W, H)
