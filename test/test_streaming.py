"""hopadiff.streaming: the one definition of what the node publishes, shared with hopadiff-eval.

Run finding against a plain loop, the segment contract on every way a segment ends (pipeline
level; the same over DDS in test_node_dds), and the parity of the node's core with
``hopadiff-eval --streaming`` on a recorded sequence."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from contract import as_messages, contract_violations, open_after
from pipelines import make_pipeline
from scipy import ndimage
from tiny import tiny_model_config
from train_util import run_main

import hopadiff
from hopadiff import evaluate
from hopadiff.config import Config, DataConfig
from hopadiff.data import load_split
from hopadiff.streaming import FINAL, ActivityRule, Segmenter, SegmentStitcher, StreamConfig, find_runs, stream_sequence
from hopadiff.synth.features import write_feature_dataset


def runs_by_scipy(active):
    """Outside reference: scipy.ndimage labels each class row's connected runs."""
    out = []
    if active.shape[1] == 0:  # scipy cannot label an empty row; an empty window has no runs
        return out
    for c in range(active.shape[0]):
        labels, _ = ndimage.label(active[c])
        out += [(c, sl[0].start, sl[0].stop - 1) for sl in ndimage.find_objects(labels)]
    return out


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (5, 17), (137, 256), (4, 0)])
def test_find_runs_equals_scipy_labelling(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.3, 0.9, 1.0):
        active = rng.random(shape) < density
        cls, starts, ends = find_runs(active)
        assert list(zip(cls.tolist(), starts.tolist(), ends.tolist(), strict=True)) == runs_by_scipy(active)


def test_stitcher_confidence_is_the_run_mean():
    st = SegmentStitcher(2, ActivityRule(at_least_one=False))
    p = np.array([[0.9, 0.7, 0.6, 0.1], [0.1, 0.2, 0.1, 0.8]])
    segs = st.add_window([0, 1, 2, 3], [0, 1, 2, 3], p)
    assert [(s.class_id, s.start_k, s.end_k) for s in segs] == [(0, 0, 2), (1, 3, 3)]
    assert segs[0].confidence == pytest.approx((0.9 + 0.7 + 0.6) / 3)


# ---------------------------------------------------------------------------------- pipeline level
@pytest.fixture(scope="module")
def model():
    return hopadiff.HopaDIFF(tiny_model_config(feature_dim=8, num_classes=5)).eval()


def _pipe(model, **kw):
    return make_pipeline(model, window=8, hop=2, min_window_frames=2, ddim_steps=2, **kw)


def _feats(rng, ids):
    return rng.normal(size=8).astype(np.float32), {i: rng.normal(size=8).astype(np.float32) for i in ids}


def test_everyone_mode_closes_a_lost_track_and_everything_on_reset(model):
    pipe = _pipe(model, segment_all_persons=True, track_lost_seconds=0.5)
    rng, outs = np.random.default_rng(0), []
    boxes = {1: [0, 0, 10, 20], 2: [50, 0, 10, 20]}
    for k in range(30):
        ids = [1, 2] if k < 12 else [2]  # person 1 leaves after frame 11, and is dropped 0.5 s later
        stamp = 1000 + k * 100_000_000
        tracks = pipe.track([boxes[i] for i in ids], np.ones(len(ids)), ids, stamp)
        hol, par = _feats(rng, ids)
        res = pipe.step(stamp, tracks, hol, par, {})
        outs += as_messages(res.outputs)  # segments are live objects: snapshot what is published now
    msgs = outs
    lost = [m for m in msgs if m["person_id"] == 1]
    assert lost and not open_after(msgs, len(msgs), {1}), "person 1's segments closed when the track was lost"
    assert open_after(msgs, len(msgs), {2}), "person 2 still has an ongoing segment"
    outs += as_messages(pipe.reset())
    assert contract_violations(outs) == []
    assert pipe.memory_frames() == 0


@pytest.mark.parametrize("phases", [1, 4])
def test_inference_phases_spread_persons_over_the_hop_each_updated_once_per_hop(model, phases):
    """Everyone mode, 8 persons, hop 8: with 1 phase every person's window runs on the same frames
    (one batched pass); with 4, two persons per inference frame, frames 2 apart, and each person
    still gets one window per hop."""
    pipe = make_pipeline(model, window=16, hop=8, min_window_frames=2, ddim_steps=2, segment_all_persons=True,
                         max_persons=8, inference_phases=phases)  # fmt: skip
    rng = np.random.default_rng(5)
    ids = list(range(1, 9))
    boxes = [[40 * i, 0, 30, 60] for i in ids]
    windows: dict[int, list[int]] = {}  # frame -> persons whose window ran
    for k in range(49):  # pipe.k counts from 0: frames 0..48
        stamp = (k + 1) * 200_000_000
        tracks = pipe.track(boxes, np.ones(8), ids, stamp)
        hol, par = _feats(rng, ids)
        res = pipe.step(stamp, tracks, hol, par, {})
        ran = sorted(o.person_id for o in res.outputs if not o.closed)
        if ran:
            windows[pipe.k] = ran
    later = {k: p for k, p in windows.items() if k > 16}  # after everyone's first window
    per_person = {i: sum(i in p for p in later.values()) for i in ids}
    assert set(per_person.values()) == {4}, (per_person, windows)  # frames 17..48: four hops, one each
    if phases == 1:
        assert all(len(p) == 8 for p in later.values()) and all(k % 8 == 0 for k in later)
    else:
        assert all(len(p) == 2 for p in later.values())
        assert sorted({k % 8 for k in later}) == [0, 2, 4, 6]


def test_a_person_hidden_for_two_seconds_keeps_id_buffer_and_open_segments(model):
    """The tracker's own matching (no upstream ids): person 1 walks behind something for 2 s
    (20 sampled frames at 10 fps). Their buffer continues with those frames masked, no segment is
    closed, and when they reappear it is as person 1 with every frame of the window in place."""
    pipe, rng, outs = _pipe(model, segment_all_persons=True), np.random.default_rng(3), []
    ns = 100_000_000
    for k in range(50):
        a, b = [10 + 2 * k, 0, 30, 90], [250, 0, 30, 90]
        boxes = [a, b] if not 15 <= k < 35 else [b]
        tracks = pipe.track(boxes, np.full(len(boxes), 0.9), None, k * ns)
        hol, par = _feats(rng, [t.track_id for t in tracks if t.seen])
        res = pipe.step(k * ns, tracks, hol, par, {})
        outs += as_messages(res.outputs)
        assert {t.track_id for t in tracks} == ({1, 2} if k >= 2 else set()), k
    buf = pipe.segmenter.persons[1]
    assert list(buf.ks) == list(range(42, 50)) and list(pipe.segmenter.ks) == list(range(42, 50))
    assert not [m for m in outs if m["person_id"] == 1 and all(s["status"] == FINAL for s in m["segments"])]
    assert open_after(outs, len(outs), {1}), "person 1's segments stay open through the occlusion"
    assert contract_violations(outs + as_messages(pipe.close_all())) == []


def test_referring_mode_closes_on_target_switch_and_never_resegments_closed_frames(model):
    pipe, rng, outs, targets = _pipe(model, grounding_window=4), np.random.default_rng(1), [], []
    pipe._text_emb = object()  # a query is active (the similarities below stand in for the backbone's)
    for k in range(40):
        tracks = pipe.track([[0, 0, 10, 20], [50, 0, 10, 20]], np.ones(2), [1, 2])
        hol, par = _feats(rng, [1, 2])
        sims = {1: 0.9, 2: 0.1} if k < 15 or k >= 30 else {1: 0.1, 2: 0.9}  # 2 wins for a while, then 1 again
        res = pipe.step(1000 + k, tracks, hol, par, sims)
        targets.append(res.target_id)
        outs += as_messages(res.outputs)
    msgs = outs + as_messages(pipe.close_all())
    assert 1 in targets and 2 in targets
    assert contract_violations(msgs) == []
    by_person = {}
    for m in msgs:
        for s in m["segments"]:
            if s["status"] == FINAL and s["conf"] > 0:
                by_person.setdefault(m["person_id"], []).append((s["start"], s["end"], s["class_id"]))
    # frames a closed stream covered are not segmented again: a person's FINAL segments of one class never overlap
    for segs in by_person.values():
        for c in {x[2] for x in segs}:
            spans = sorted((a, b) for a, b, cc in segs if cc == c)
            assert all(b0 < a1 for (_, b0), (a1, _) in itertools.pairwise(spans)), spans


# ---------------------------------------------------------------------------------- parity
def test_node_core_and_hopadiff_eval_streaming_publish_the_same(tmp_path, model):
    """A recorded sequence (features + one tracked box) replayed through the node's core
    (RhasPipeline.step) and through ``hopadiff-eval --streaming``: identical per-frame output
    and identical segments."""
    C, D = 5, 8
    write_feature_dataset(tmp_path / "data", num_classes=C, samples=(2, 2, 2), length=(30, 50), dim=D, fps=5.0)
    root = tmp_path / "data" / "manifest"
    samples, meta = load_split(root, "test")
    cfg = Config(model=model.cfg, data=DataConfig(root=str(root), window=8, hop=2))
    ckpt = tmp_path / "model.pt"
    hopadiff.save_checkpoint(ckpt, model, cfg, meta["labels"])
    r = run_main(
        evaluate.main, "--checkpoint", ckpt, "--split", "test", "--streaming", "--min-window-frames", 2,
        "--steps", 2, "--plots", 0, "--out", tmp_path / "eval",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "streaming (the node's code" in r.stdout and "| acc |" in r.stdout
    for smp in samples:
        doc = json.loads((tmp_path / "eval" / "streaming" / f"{smp.name}.json").read_text())
        pipe = make_pipeline(model, meta["labels"], window=8, hop=2, min_window_frames=2, ddim_steps=2,
                             segment_all_persons=True)  # fmt: skip
        pipe.segmenter.record = True
        published = {}
        for k in range(smp.num_frames):
            tracks = pipe.track([[10, 10, 20, 40]], [1.0], [7])
            part = {tracks[0].track_id: smp.partial[k]} if smp.visible[k] else {}
            res = pipe.step(round(k * 1e9 / meta["fps"]), tracks, smp.holistic[k], part, {})
            published.update({s.segment_id: s for o in res.outputs for s in o.segments})
        published.update({s.segment_id: s for o in pipe.close_all() for s in o.segments})
        frames = pipe.segmenter.recorded[tracks[0].track_id]
        node_frames = [np.flatnonzero(frames[k][1]).tolist() if k in frames else None for k in range(smp.num_frames)]
        assert node_frames == doc["frames"]
        node_segs = sorted(
            (s.class_id, s.start_k, s.end_k, s.start_ns, s.end_ns, round(s.confidence, 6), s.revision, s.status)
            for s in published.values()
        )
        eval_segs = sorted(
            (
                g["class_id"],
                g["start_k"],
                g["end_k"],
                g["start_ns"],
                g["end_ns"],
                round(g["confidence"], 6),
                g["revision"],
                g["status"],
            )
            for g in doc["segments"]
        )
        assert node_segs == eval_segs and node_segs
        assert sum(f is not None for f in node_frames) >= smp.num_frames - 2, "all but the frames after the last hop"


def test_stream_sequence_edges(model):
    """Shorter than min_window_frames: nothing published; exactly min frames: one window."""
    rng = np.random.default_rng(3)
    cfg = StreamConfig(window=8, hop=2, min_window_frames=4, ddim_steps=2)
    x = rng.normal(size=(3, 8)).astype(np.float32)
    _, _, covered, segs = stream_sequence(model, x, x, np.ones(3, bool), cfg)
    assert not covered.any() and not segs
    x = rng.normal(size=(5, 8)).astype(np.float32)
    _, active, covered, segs = stream_sequence(model, x, x, np.ones(5, bool), cfg)
    assert covered.tolist() == [True] * 5 and segs and all(s.status == FINAL for s in segs)
    assert active.any(axis=0).all(), "at_least_one_action: every published frame has an action"


def test_warm_start_runs_only_its_steps_and_restarts_cold_after_a_close(model):
    """Warm start: the first window runs the whole schedule, later ones only warm_start_steps
    decoder passes from the previous estimate; after the stream is closed, cold again."""
    calls = []
    hook = model.decoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        cfg = StreamConfig(window=8, hop=2, min_window_frames=4, ddim_steps=5, warm_start=True, warm_start_steps=2)
        seg = Segmenter(model, 5, cfg)
        rng = np.random.default_rng(4)
        passes = []
        for k in range(12):
            seg.add_frame(k, k, rng.normal(size=8).astype(np.float32), {1: rng.normal(size=8).astype(np.float32)})
            if seg.due(k) and seg.ready(1):
                calls.clear()
                out = seg.infer([1])
                passes.append(len(calls))
                assert out and out[0].segments
            if k == 7:
                seg.close([1])
        assert passes == [5, 2, 5, 2], passes  # windows at k=4, 6 | closed at 7 | 8 (cold), 10
    finally:
        hook.remove()
