"""PersonTracker: identities through crossings, occlusions, false detections and dropouts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hopadiff.frames import read_frames
from rhas_ros.core.appearance import DIM, color_descriptor
from rhas_ros.core.settings import Settings, tracker_params
from rhas_ros.core.tracking import (
    BoxKalman,
    Detections,
    PersonTracker,
    TrackerParams,
    assign,
    iou_matrix,
    xywh_to_z,
    z_to_xywh,
)
from rhas_ros.tools.tracking_eval import (
    ColorAppearance,
    SimulatedAppearance,
    clip_truth,
    crossings,
    identity_errors,
    simulated_detections,
    track_clip,
)

FPS = 10
NS = 10**9 // FPS


def frame(boxes, scores=None, external_ids=None, embeddings=None, stamp_ns=0):
    """One frame's detections and stamp, as PersonTracker.update takes them."""
    return Detections.of(boxes, scores, external_ids, embeddings), stamp_ns


def run(tracker, frames, embeddings=None):
    """frames: per frame {person: box}; -> per frame {person: track id} for the persons detected."""
    out = []
    for k, dets in enumerate(frames):
        persons = list(dets)
        embs = None if embeddings is None else [embeddings[p] for p in persons]
        tracks = tracker.update(*frame([dets[p] for p in persons], np.full(len(persons), 0.9), None, embs, k * NS))
        out.append({persons[t.detection]: t.track_id for t in tracks if t.seen})
    return out


def walker(x0, vx, frames, y=100, w=30, h=90):
    return [(x0 + vx * k, y, w, h) for k in range(frames)]


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0]])


def test_kalman_learns_a_constant_velocity():
    mean, cov = BoxKalman.initiate(xywh_to_z((0, 0, 30, 90)))
    for k in range(1, 15):
        mean, cov = BoxKalman.predict(mean, cov)
        mean, cov = BoxKalman.update(mean, cov, xywh_to_z((4 * k, 0, 30, 90)))
    mean, _ = BoxKalman.predict(mean, cov)
    np.testing.assert_allclose(z_to_xywh(mean), (60, 0, 30, 90), atol=1.0)
    assert np.allclose(cov, cov.T) and (np.linalg.eigvalsh(cov) > 0).all()


def test_two_persons_crossing_keep_their_ids_with_the_one_behind_unseen():
    """Walking towards each other in one lane; while they overlap the one behind is not detected."""
    n = 60
    a, b = walker(0, 5, n), walker(300, -5, n)
    frames = []
    for k in range(n):
        overlap = iou_matrix(np.array([a[k]]), np.array([b[k]]))[0, 0] > 0.1
        frames.append({"b": b[k]} if overlap else {"a": a[k], "b": b[k]})
    assert crossings([{1: pa, 2: pb} for pa, pb in zip(a, b, strict=True)]) == 1
    ids = run(PersonTracker(), frames)
    assert {f["a"] for f in ids if "a" in f} == {1} and {f["b"] for f in ids if "b" in f} == {2}


def test_persons_who_meet_and_turn_back_are_told_apart_by_appearance():
    """Two persons of one size meet, stand together (the one behind unseen for 1 s) and walk back
    the way they came: motion predicts they go on, and alone swaps them; appearance does not."""

    def path(x0, v, n=55):
        xs, x = [], x0
        for k in range(n):
            xs.append((x, 100, 30, 90))
            x += v if k < 22 else (0 if k < 30 else -v)
        return xs

    a, b = path(0, 6), path(266, -6)
    frames = []
    for pa, pb in zip(a, b, strict=True):
        close = iou_matrix(np.array([pa]), np.array([pb]))[0, 0] > 0.3
        frames.append({"b": pb} if close else {"a": pa, "b": pb})
    assert sum("a" not in f for f in frames) >= 10
    rng = np.random.default_rng(0)
    look = {"a": rng.normal(size=32), "b": rng.normal(size=32)}
    ids = run(PersonTracker(), frames, look)
    assert {f["a"] for f in ids if "a" in f} == {1} and {f["b"] for f in ids if "b" in f} == {2}
    motion_only = run(PersonTracker(), frames)
    assert len({f["a"] for f in motion_only if "a" in f}) > 1, "the scenario needs appearance"


@pytest.fixture(scope="module")
def crossing_clips(tmp_path_factory):
    """3 rendered clips (hopadiff-synth --video: 3 persons walking and running, turning at the
    walls, crossing each other): per clip (truth, simulated detections, RGB frames)."""
    import json

    from hopadiff.synth.video import write_video_dataset

    d = tmp_path_factory.mktemp("crossings")
    write_video_dataset(d, clips=3, frames=300, persons=3, actions=("walking", "running"))
    clips = []
    for v in json.loads((d / "extract.json").read_text())["videos"]:
        truth = clip_truth(v)
        clips.append((truth, simulated_detections(truth, np.random.default_rng(0)), read_frames(d / v["video"])))
    assert sum(crossings(truth) for truth, _, _ in clips) >= 20
    return clips


@pytest.mark.parametrize("appearance", ["colour, node defaults", "simulated re-ID features, gate 0.75"])
def test_synthetic_crossing_clips_keep_every_identity_given_appearance(crossing_clips, appearance):
    """A simulated detector (the person behind unseen while two overlap, misses, jitter, false
    boxes) on rendered crossing clips: no ID switch, no fragmentation, one id per person, with the
    node's defaults (the colour descriptor of the rendered pixels, its default gate), and with crop
    embeddings of re-ID quality (two persons 0.7 similar) and a gate set for them. Motion alone
    does switch on these clips (same-size persons in one lane overlap completely and may turn or
    change speed unseen)."""
    totals = {"appearance": [0, 0], "motion": [0, 0]}
    for truth, detections, frames in crossing_clips:
        for mode in totals:
            if mode == "motion":
                params, look = tracker_params(Settings()), None
            elif appearance.startswith("colour"):
                params, look = tracker_params(Settings()), ColorAppearance(frames)
            else:
                params, look = TrackerParams(appearance_gate=0.75), SimulatedAppearance(truth, across=0.7)
            e = track_clip(PersonTracker(params), truth, detections, FPS, look)
            totals[mode][0] += e["id_switches"]
            totals[mode][1] += e["fragmentations"]
            if mode == "appearance":
                assert all(len(ids) == 1 for ids in e["ids"].values()), e["ids"]
    assert totals["appearance"] == [0, 0]
    assert totals["motion"][0] > 0, "the clips need appearance (else this test proves nothing about it)"


def test_colour_descriptor_tells_shirts_apart_and_stays_with_one():
    """The upper-body colour histogram: unit norm; the same shirt in another place and under a
    little noise ~1; red and orange (neighbouring hues) and a white shirt against a light grey
    background are told apart; a box outside the image or too small gives none."""
    rng = np.random.default_rng(0)

    def person(shirt, x=40, bg=(200, 200, 200), noise=0.0):
        img = np.full((120, 200, 3), bg, np.uint8)
        img[30:70, x + 8 : x + 22] = shirt  # torso band
        img[70:110, x + 10 : x + 20] = (50, 50, 50)  # legs
        if noise:
            img = np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)
        return color_descriptor(img, (x, 20, 30, 92))

    red, orange, white = (220, 40, 40), (250, 140, 30), (235, 235, 235)
    d = person(red)
    assert d.shape == (DIM,) and abs(np.linalg.norm(d) - 1) < 1e-5
    assert person(red, x=120) @ d > 0.99
    assert person(red, noise=3.0) @ person(red, x=120, noise=3.0) > 0.9  # camera noise in both frames
    assert person(orange) @ d < 0.8
    assert person(white) @ person((200, 200, 200)) < 0.8
    img = np.zeros((120, 200, 3), np.uint8)
    for box in [(300, 0, 30, 90), (10, 10, 4, 8), (250, 150, -40, -90), (-90, -90, 40, 40), (np.nan, 0, 30, 90)]:
        assert color_descriptor(img, box) is None, box
    assert color_descriptor(img, (-10, -20, 60, 140)) is not None  # partly outside: the part inside


def test_a_box_where_the_persons_feet_cannot_be_is_not_taken_as_a_pose_change():
    """A person missed for a frame, and clutter above them (overlapping their enlarged box, nobody
    else near): outside the motion gate and their feet would have moved half their height up in
    one frame, so it is not them (a fall keeps the id: the test above)."""
    tr = PersonTracker()
    for k in range(10):
        tr.update(*frame([(100 + 2 * k, 100, 30, 90)], [0.9], stamp_ns=k * NS))
    (t,) = tr.update(*frame([(126, 40, 40, 80)], [0.9], stamp_ns=10 * NS))  # the person unseen; clutter above
    assert (t.track_id, t.missed) == (1, 1) and t.box == (118.0, 100.0, 30.0, 90.0)


def test_a_crop_showing_two_persons_does_not_teach_appearance():
    """While B's box overlaps A's, the crop matched to A shows both: A's appearance stays A's."""
    rng = np.random.default_rng(3)
    look_a, look_b = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 16)))
    both = 0.8 * look_a + 0.2 * look_b  # A's crop with some of B in it
    tr = PersonTracker()
    for k in range(5):
        tr.update(*frame([(0, 0, 30, 90), (200, 0, 30, 90)], [0.9, 0.9], None, [look_a, look_b], k * NS))
    a = next(t for t in tr.tracks if t.track_id == 1)
    before = a.embedding.copy()
    tr.update(*frame([(0, 0, 30, 90), (10, 0, 30, 90)], [0.9, 0.9], None, [both, look_b], 5 * NS))
    assert a.missed == 0 and np.allclose(a.embedding, before)
    tr.update(*frame([(0, 0, 30, 90), (200, 0, 30, 90)], [0.9, 0.9], None, [both, look_b], 6 * NS))
    assert a.missed == 0 and not np.allclose(a.embedding, before), "a crop of one person does teach"


def test_appearance_gate_keeps_a_track_off_a_different_looking_person():
    """A lost track's predicted box lies on someone who looks different: with the gate that person
    gets a new id; without it (gate -1) the lost track takes them."""
    rng = np.random.default_rng(4)
    me, other = rng.normal(size=16), rng.normal(size=16)
    ids = {}
    for gate in (0.75, -1.0):
        tr = PersonTracker(TrackerParams(appearance_gate=gate))
        for k in range(6):
            tr.update(*frame([(100, 0, 30, 90)], [0.9], None, [me], k * NS))
        tr.update(*frame([], [], None, [], 6 * NS))
        for k in (7, 8, 9):
            tracks = tr.update(*frame([(100, 0, 30, 90)], [0.9], None, [other], k * NS))
        ids[gate] = [t.track_id for t in tracks if t.seen]
    assert ids == {0.75: [2], -1.0: [1]}


def test_a_person_alone_who_falls_keeps_the_id():
    """Standing (30 x 96) to lying (96 x 30) in 3 frames: faster than the motion model allows, but
    nobody else is near, so the track follows, restarts its motion state and keeps following."""
    import math

    tr = PersonTracker()
    ids = []
    for k in range(30):
        turn = min(1.0, max(0, k - 10) / 3) * math.pi / 2
        h, w = 96 * math.cos(turn) + 30 * math.sin(turn), 30 * math.cos(turn) + 96 * math.sin(turn)
        x = 100 + 2 * k + 48 * math.sin(turn)
        tracks = tr.update(*frame([(x - w / 2, 200 - h, w, h)], [0.9], stamp_ns=k * NS))
        ids.append([t.track_id for t in tracks if t.seen])
    assert ids[3:] == [[1]] * 27


def test_occluded_for_two_seconds_comes_back_with_its_id_and_is_reported_lost_meanwhile():
    n = 60
    a, b = walker(0, 2, n), walker(200, 0, n, w=40)
    frames = [{"a": a[k], "b": b[k]} if not 15 <= k < 35 else {"b": b[k]} for k in range(n)]  # 2 s hidden
    tracker = PersonTracker()
    missed = []
    for k, dets in enumerate(frames):
        ps = list(dets)
        tracks = tracker.update(*frame([dets[p] for p in ps], np.full(len(ps), 0.9), stamp_ns=k * NS))
        missed.append({t.track_id: t.missed for t in tracks})
        if k >= 35:
            assert {ps[t.detection]: t.track_id for t in tracks if t.seen}["a"] == 1
    assert missed[34][1] == 20, "the hidden person stays a track (its buffer continues), 20 frames missed"
    assert missed[35][1] == 0


def test_lost_person_far_away_is_reidentified_by_appearance_only():
    """Gone for 3 s, back 150 px away (no box overlap): the same appearance gets the old id, a
    different one a new id."""
    rng = np.random.default_rng(1)
    me, other = rng.normal(size=32), rng.normal(size=32)
    tr = PersonTracker()
    for k in range(10):
        tr.update(*frame([(50, 100, 30, 90)], [0.9], None, [me], k * NS))
    for k in range(10, 40):
        tr.update(*frame([], [], None, [], k * NS))
    got = [
        tr.update(*frame([(200, 100, 30, 90)], [0.9], None, [me + 0.1 * rng.normal(size=32)], k * NS))
        for k in (40, 41, 42)
    ]
    assert [t.track_id for t in got[-1] if t.seen] == [1]
    tr2 = PersonTracker()
    for k in range(10):
        tr2.update(*frame([(50, 100, 30, 90)], [0.9], None, [me], k * NS))
    for k in range(10, 40):
        tr2.update(*frame([], [], None, [], k * NS))
    for k in (40, 41, 42):
        tracks = tr2.update(*frame([(200, 100, 30, 90)], [0.9], None, [other], k * NS))
    assert [t.track_id for t in tracks if t.seen] == [2]


def test_a_one_frame_false_detection_gets_no_id():
    tr = PersonTracker()
    seen = set()
    for k in range(20):
        boxes = [(10 + k, 50, 30, 90)] + ([(250, 20, 30, 90)] if k == 7 else [])
        seen |= {t.track_id for t in tr.update(*frame(boxes, [0.9] * len(boxes), stamp_ns=k * NS))}
    assert seen == {1}
    assert [t.track_id for t in tr.update(*frame([(250, 20, 30, 90)] * 1, [0.9], stamp_ns=20 * NS))] == [1], "tentative"
    for k in (21, 22):
        tracks = tr.update(*frame([(250, 20, 30, 90)], [0.9], stamp_ns=k * NS))
    assert sorted(t.track_id for t in tracks) == [1, 2], "confirmed after 3 frames; id 2 is the next unused"


@pytest.mark.parametrize("drop", [0.2, 0.4])
def test_detector_dropouts_keep_one_id_per_person(drop):
    rng = np.random.default_rng(2)
    n = 100
    paths = {p: walker(20 + 100 * p, 1.5 * (-1) ** p, n) for p in range(3)}
    frames = [{p: paths[p][k] for p in paths if k < 3 or rng.random() > drop} for k in range(n)]
    ids = run(PersonTracker(), frames)
    for p in paths:
        assert len({f[p] for f in ids if p in f}) == 1, p
    truth = [{p: paths[p][k] for p in paths} for k in range(n)]
    tracked = [{tid: paths[p][k] for p, tid in f.items()} for k, f in enumerate(ids)]
    errors = identity_errors(truth, tracked)
    assert errors["id_switches"] == 0 and errors["coverage"] > 1 - drop - 0.1


def test_low_score_detections_continue_tracks_but_never_start_them():
    tr = PersonTracker(TrackerParams(high_score=0.5, low_score=0.1))
    for k in range(5):
        tr.update(*frame([(10, 10, 30, 90)], [0.9], stamp_ns=k * NS))
    for k in range(5, 10):
        tracks = tr.update(*frame([(10 + k, 10, 30, 90), (200, 10, 30, 90)], [0.3, 0.3], stamp_ns=k * NS))
        assert [(t.track_id, t.missed) for t in tracks] == [(1, 0)]
    tracks = tr.update(*frame([(20, 10, 30, 90)], [0.05], stamp_ns=10 * NS))
    assert [(t.track_id, t.missed) for t in tracks] == [(1, 1)], "below low_score: ignored"


def test_lost_tracks_are_dropped_after_lost_seconds_and_ids_are_never_reused():
    tr = PersonTracker(TrackerParams(lost_seconds=1.0))
    for k in range(5):
        tr.update(*frame([(10, 10, 30, 90)], [0.9], stamp_ns=k * NS))
    assert [t.track_id for t in tr.update(*frame([], [], stamp_ns=14 * NS))] == [1]
    assert tr.update(*frame([], [], stamp_ns=15 * NS)) == [], "lost 1.1 s > 1 s"
    tr.reset()
    for k in range(3):
        tracks = tr.update(*frame([(10, 10, 30, 90)], [0.9], stamp_ns=(20 + k) * NS))
    assert [t.track_id for t in tracks] == [2]


def test_tracker_follows_external_ids():
    tr = PersonTracker()
    assert [t.track_id for t in tr.update(*frame([[0, 0, 10, 10]], external_ids=[7]))] == [1], "confirmed at birth"
    tracks = tr.update(*frame([[300, 300, 10, 10]], external_ids=[7], stamp_ns=NS))  # jumped, but upstream says same
    assert [t.track_id for t in tracks] == [1] and tracks[0].box[0] == 300


def test_identity_errors_counts_switches_and_fragments():
    truth = [{1: (0, 0, 10, 10)}] * 5
    tracked = [{1: (0, 0, 10, 10)}, {1: (0, 0, 10, 10)}, {}, {2: (0, 0, 10, 10)}, {1: (0, 0, 10, 10)}]
    e = identity_errors(truth, tracked)
    assert (e["id_switches"], e["fragmentations"], e["coverage"], e["ids"]) == (2, 1, 0.8, {1: [1, 2]})
    held = [{1: (0, 0, 10, 10)}, {1: None}, {1: None}, {1: (0, 0, 10, 10)}, {2: (0, 0, 10, 10)}]
    e = identity_errors(truth, held)  # a track reported lost holds its person: no fragmentation
    assert (e["id_switches"], e["fragmentations"], e["coverage"]) == (1, 0, 1.0)


def test_assignment_leaves_pairs_unmatched_rather_than_take_two_poor_ones():
    """Row 0 fits column 0 well; the only other allowed pairs are poor. Plain rectangular assignment
    would take both poor pairs (more pairs); the padded one keeps the good pair."""
    cost = np.array([[0.1, 0.9], [0.9, 5.0]])
    allowed = np.array([[True, True], [True, False]])
    assert assign(cost, allowed) == [(0, 0)]
    assert assign(cost, allowed, unmatched_cost=2.0) == [(0, 1), (1, 0)]


def test_a_shared_id_source_never_gives_an_id_twice():
    """The node keeps one id source for its process: the tracker of a later configure continues it."""
    ids = itertools.count(1)
    first = PersonTracker(TrackerParams(confirm_frames=1), ids)
    assert [t.track_id for t in first.update(*frame([(0, 0, 30, 90), (100, 0, 30, 90)], [0.9, 0.9]))] == [1, 2]
    first.reset()
    assert [t.track_id for t in first.update(*frame([(0, 0, 30, 90)], [0.9], stamp_ns=NS))] == [3]
    second = PersonTracker(TrackerParams(confirm_frames=1), ids)
    assert [t.track_id for t in second.update(*frame([(0, 0, 30, 90)], [0.9]))] == [4]
