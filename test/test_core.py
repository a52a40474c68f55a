"""The node's ROS-free core: tracker, grounding hysteresis, segment stitching, pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from pipelines import make_pipeline
from tiny import tiny_model_config

import hopadiff
from hopadiff.features import load_backbone
from hopadiff.features.tiny import make_tiny_clip
from hopadiff.frames import crop
from hopadiff.streaming import FINAL, ONGOING, ActivityRule, SegmentStitcher
from rhas_ros.core.appearance import color_descriptor
from rhas_ros.core.grounding import Grounder, GroundingConfig


def test_grounding_hysteresis():
    g = Grounder(GroundingConfig(window=1, switch_margin=0.05, switch_frames=3))
    assert g.update({1: 0.5, 2: 0.2}) == 1
    assert g.update({1: 0.2, 2: 0.5}) == 1  # one frame of doubt does not switch
    assert g.update({1: 0.5, 2: 0.2}) == 1
    for _ in range(2):
        assert g.update({1: 0.2, 2: 0.6}) == 1
    assert g.update({1: 0.2, 2: 0.6}) == 2  # third consecutive frame: switch
    assert g.update({2: 0.6}) == 2 and 1 not in g.scores
    assert g.update({}) is None


def test_grounding_keeps_the_person_through_an_unusual_pose():
    """Measured on the demo clip: the referred person's crop similarity drops from about 0.6 to 0.2
    while they lie on the floor (a squashed crop). A mean over the track's window keeps them; the
    old EMA (weight 0.3) switched to a bystander at 0.3 within a few frames."""
    g = Grounder(GroundingConfig(window=256))
    for _ in range(30):
        assert g.update({1: 0.6, 2: 0.3}) == 1
    for _ in range(12):
        assert g.update({1: 0.2, 2: 0.3}) == 1
    assert g.confidence(1) > g.confidence(2)
    g.update({2: 0.3}, live=[1, 2])  # person 1 tracked but not seen this frame: keeps the score
    assert g.target == 1 and 1 in g.scores


def _probs(active_rows, C=3):
    p = np.full((C, len(active_rows)), 0.1)
    for t, cs in enumerate(active_rows):
        for c in cs:
            p[c, t] = 0.9
    return p


def test_stitching_ids_revisions_and_finals():
    st = SegmentStitcher(3, ActivityRule(at_least_one=False))
    ks = list(range(0, 8))
    out = st.add_window(ks, [k * 10 for k in ks], _probs([[0]] * 4 + [[1]] * 4))
    assert [(s.class_id, s.start_k, s.end_k, s.status) for s in out] == [(0, 0, 3, ONGOING), (1, 4, 7, ONGOING)]
    ids = {s.class_id: s.segment_id for s in out}
    ks2 = list(range(4, 12))  # next window overlaps by 4 frames; class 1 continues to frame 9
    out2 = st.add_window(ks2, [k * 10 for k in ks2], _probs([[1]] * 6 + [[2]] * 2))
    got = {s.class_id: s for s in out2}
    assert got[0].status == FINAL and got[0].segment_id == ids[0]  # ended before the window: final
    assert got[1].segment_id == ids[1] and got[1].end_k == 9 and got[1].revision == 1
    assert got[2].start_k == 10 and got[2].revision == 0
    assert min(st.sum) >= 4, "frames nothing can touch any more are forgotten"


def test_stitching_retraction_and_single_label():
    st = SegmentStitcher(3, ActivityRule(at_least_one=False))
    st.add_window([0, 1, 2, 3], [0, 1, 2, 3], _probs([[], [], [2], [2]]))
    out = st.add_window([2, 3, 4, 5], [2, 3, 4, 5], _probs([[], [], [], []]) * 0)  # averaged below threshold
    retracted = [s for s in out if s.class_id == 2]
    assert retracted and retracted[0].status == FINAL and retracted[0].confidence == 0
    single = SegmentStitcher(3, ActivityRule(multi_label=False))
    out = single.add_window([0, 1, 2], [0, 1, 2], np.array([[0.2, 0.2, 0.6], [0.5, 0.5, 0.3], [0.3, 0.3, 0.1]]))
    assert [(s.class_id, s.start_k, s.end_k) for s in out] == [(1, 0, 1), (0, 2, 2)]


@pytest.fixture(scope="module")
def pipeline_parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    make_tiny_clip(d)
    backbone = load_backbone("clip", str(d), "cpu", local_files_only=True)
    model = hopadiff.HopaDIFF(tiny_model_config(feature_dim=24, num_classes=5)).eval()
    return model, backbone


def test_pipeline_everyone_mode_batches_and_bounds_memory(pipeline_parts):
    model, backbone = pipeline_parts
    labels = [f"a{i}" for i in range(5)]
    pipe = make_pipeline(
        model, labels, backbone, window=8, hop=4, min_window_frames=4, ddim_steps=2, segment_all_persons=True
    )
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    boxes = np.array([[5, 5, 30, 60], [60, 5, 30, 60], [110, 5, 30, 60]], float)
    outputs = []
    for k in range(30):
        res = pipe.process(frame, 1000 + k, (boxes, np.ones(3), None))
        outputs += res.outputs
        assert pipe.memory_frames() <= 8 * 4
    assert {o.person_id for o in outputs} == {1, 2, 3}
    for o in outputs:
        assert o.window_start_ns <= o.window_end_ns and o.query == "" and o.grounding_confidence == 0
        for s in o.segments:
            assert s.start_ns <= s.end_ns
    assert len(pipe.segmenter.stamps) <= 8


@pytest.mark.parametrize("kind", ["color", "backbone", "none"])
def test_pipeline_gives_the_tracker_the_chosen_appearance(pipeline_parts, kind):
    """reid_appearance: the tracks learn the colour descriptor, the backbone's crop features, or no
    appearance at all."""
    model, backbone = pipeline_parts
    pipe = make_pipeline(model, None, backbone, window=8, hop=4, min_window_frames=4, ddim_steps=2,
                         segment_all_persons=True, reid_appearance=kind)  # fmt: skip
    frame = np.full((120, 160, 3), 90, np.uint8)
    frame[10:60, 10:30] = (200, 30, 30)  # a red shirt
    box = np.array([[5, 5, 30, 60]], float)
    for k in range(4):
        pipe.process(frame, 1000 + k, (box, np.ones(1), None))
    (track,) = pipe.tracker.tracks
    if kind == "none":
        assert track.embedding is None
    else:
        want = color_descriptor(frame, box[0]) if kind == "color" else backbone.encode_images([crop(frame, box[0])])
        want = want if kind == "color" else want.features[0].cpu().numpy()
        assert track.embedding.shape == want.shape
        np.testing.assert_allclose(track.embedding, want / np.linalg.norm(want), atol=1e-5)


def test_pipeline_referring_mode_needs_a_query(pipeline_parts):
    model, backbone = pipeline_parts
    pipe = make_pipeline(model, None, backbone, window=8, hop=2, min_window_frames=2, ddim_steps=2)
    frame = np.zeros((120, 160, 3), np.uint8)
    boxes = (np.array([[5, 5, 30, 60], [60, 5, 30, 60]], float), np.ones(2), None)
    assert not any(pipe.process(frame, k, boxes).outputs for k in range(6))
    assert pipe.set_query("  the   tall person\n in red ")[0] == "the tall person in red"
    res = [pipe.process(frame, 10 + k, boxes) for k in range(6)]
    outs = [o for r in res for o in r.outputs]
    assert outs and {o.person_id for o in outs} == {res[-1].target_id}
    assert all(o.query == "the tall person in red" for o in outs)
    pipe.set_query("x" * 10_000)
    assert len(pipe.query) == 512
    pipe.reset()
    assert pipe.memory_frames() == 0 and not pipe.tracker.tracks


def test_pipeline_is_deterministic_with_eta0(pipeline_parts):
    model, backbone = pipeline_parts
    frame = np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    runs = []
    for _ in range(2):
        pipe = make_pipeline(
            model, None, backbone, window=6, hop=3, min_window_frames=3, ddim_steps=3, segment_all_persons=True
        )
        outs = [pipe.process(frame, k, (np.array([[0, 0, 40, 60]], float), np.ones(1), None)).outputs for k in range(9)]
        runs.append(
            [
                (s.class_id, s.start_ns, s.end_ns, round(s.confidence, 6))
                for o in outs
                for out in o
                for s in out.segments
            ]
        )
    assert runs[0] == runs[1] and runs[0]


def test_stitching_long_action_keeps_one_id_and_bounded_memory():
    """An action lasting far longer than a window stays one segment; old frames are forgotten."""
    st = SegmentStitcher(3, ActivityRule(at_least_one=False))
    W, hop = 8, 4
    ids, sizes = set(), []
    for start in range(0, 200, hop):
        ks = list(range(start, start + W))
        probs = _probs([[0]] * W)
        probs[0] = 0.8 if start < 100 else 0.6
        out = st.add_window(ks, [1000 + k for k in ks], probs)
        ids |= {s.segment_id for s in out}
        sizes.append(len(st.sum))
    assert len(ids) == 1 and max(sizes) <= W
    (seg,) = st.open
    assert seg.start_k == 0 and seg.start_ns == 1000 and seg.end_k == 203 and seg.status == ONGOING
    assert 0.6 < seg.confidence < 0.8  # mean over the whole action, frozen frames included
    (final,) = st.finish()
    assert final.status == FINAL


def test_pipeline_encodes_holistic_features_with_the_query(tiny_models):
    """A checkpoint trained on text-conditioned holistic features: the node encodes the frame with
    the active query (BLIP-2 ITM path), and a new query restarts the windows."""
    backbone = load_backbone("blip2", str(tiny_models["blip2"]), "cpu", local_files_only=True)
    model = hopadiff.HopaDIFF(tiny_model_config(feature_dim=backbone.feature_dim))
    pipe = make_pipeline(model, None, backbone, holistic_text=True, window=8, hop=2, min_window_frames=2, ddim_steps=2)
    frame = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    boxes = (np.array([[5, 5, 30, 50]], float), np.ones(1), None)
    pipe.set_query("the tall person in the red shirt")
    for k in range(3):
        pipe.process(frame, k, boxes)
    expected = backbone.encode_images([frame], "the tall person in the red shirt").features[0].numpy()
    np.testing.assert_allclose(pipe.segmenter.holistic[-1], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(pipe.segmenter.holistic[-1], backbone.encode_images([frame]).features[0].numpy())
    both = backbone.encode_images([frame, frame[:30, :20]], condition_first="the tall person in the red shirt")
    np.testing.assert_allclose(both.first_conditioned.numpy(), expected, rtol=1e-5, atol=1e-6)  # one vision pass
    np.testing.assert_allclose(both.features[0].numpy(), backbone.encode_images([frame]).features[0].numpy(),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    pipe.set_query("the short person in the blue shirt")
    assert len(pipe.segmenter.holistic) == 0 and not pipe.segmenter.persons, "features of the old text are not reused"
    pipe.process(frame, 3, boxes)
    assert len(pipe.segmenter.holistic) == 1
