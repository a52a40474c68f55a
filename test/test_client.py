"""rhas_ros.client.ActionTimeline on scripted message streams (no ROS graph): revisions,
retractions, reordering, duplicates, target switches, persons leaving; callbacks counted."""

from __future__ import annotations

import subprocess
import sys
import threading

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from rhas_msgs.msg import ActionLabels, ActionSegment, ActionSegmentArray, TrackedPerson, TrackedPersonArray
from rhas_ros.client import FINAL, ONGOING, ActionTimeline

LABELS = ["walking", "falling", "waving"]
S = 1_000_000_000


def t(sec: float) -> Time:
    ns = round(sec * S)
    return Time(sec=ns // S, nanosec=ns % S)


def seg(sid, cls, a, b, rev, status=ONGOING, conf=0.8):
    return ActionSegment(segment_id=sid, revision=rev, status=status, start=t(a), end=t(b), class_id=cls,
                         label=LABELS[cls], confidence=conf)  # fmt: skip


def msg(person, stamp, *segments):
    return ActionSegmentArray(header=Header(stamp=t(stamp)), person_id=person, query="q", segments=list(segments))


def tracks(target, stamp, persons=(1, 2)):
    return TrackedPersonArray(
        header=Header(stamp=t(stamp)), query="the man", target_person_id=target,
        persons=[TrackedPerson(person_id=p, grounding_score=0.7 if p == target else 0.3) for p in persons],
    )  # fmt: skip


class Counter:
    def __init__(self):
        self.calls = []

    def __call__(self, s):
        self.calls.append((s.segment_id, s.revision, s.status))


def timeline_with(*subs):
    tl = ActionTimeline(horizon_s=60)
    tl.ingest_labels(ActionLabels(labels=LABELS, multi_label=True))
    tl.ingest_tracks(tracks(1, 0.0))
    counters = []
    for event, action, kw in subs:
        c = Counter()
        getattr(tl, f"on_action_{event}")(action, c, **kw)
        counters.append(c)
    return tl, counters


def test_revisions_grow_and_callbacks_fire_once():
    tl, (started, ended) = timeline_with(("started", "falling", {}), ("ended", "falling", {}))
    tl.ingest_segments(msg(1, 2, seg(5, 1, 1.0, 2.0, 0)))
    tl.ingest_segments(msg(1, 3, seg(5, 1, 1.0, 3.0, 1)))
    tl.ingest_segments(msg(1, 3, seg(5, 1, 1.0, 3.0, 1)))  # duplicate
    tl.ingest_segments(msg(1, 4, seg(5, 1, 1.0, 3.5, 2, FINAL)))
    tl.ingest_segments(msg(1, 4, seg(5, 1, 1.0, 3.0, 1)))  # an older revision arriving late
    assert started.calls == [(5, 0, ONGOING)] and ended.calls == [(5, 2, FINAL)]
    (s,) = tl.segments(1)
    assert (s.revision, s.end_ns, s.final) == (2, 3_500_000_000, True)


def test_retraction_never_ends_and_min_duration_guards_the_start():
    tl, (started, guarded, ended) = timeline_with(
        ("started", "waving", {}), ("started", "waving", {"min_duration": 1.0}), ("ended", "waving", {})
    )
    tl.ingest_segments(msg(1, 2, seg(7, 2, 1.8, 2.0, 0)))  # a short guess
    tl.ingest_segments(msg(1, 3, seg(7, 2, 1.8, 2.0, 1, FINAL, conf=0.0)))  # retracted by the next window
    assert started.calls == [(7, 0, ONGOING)] and guarded.calls == [] and ended.calls == []
    assert tl.segments(1) == [], "a retracted segment is gone"
    tl.ingest_segments(msg(1, 3, seg(7, 2, 1.8, 2.0, 0)))  # a stale copy after the retraction
    assert tl.segments(1) == [] and started.calls == [(7, 0, ONGOING)]


def test_final_before_ongoing_out_of_order():
    tl, (started, ended) = timeline_with(("started", 1, {}), ("ended", 1, {}))  # by class id
    tl.ingest_segments(msg(1, 5, seg(9, 1, 1.0, 4.0, 3, FINAL)))
    tl.ingest_segments(msg(1, 3, seg(9, 1, 1.0, 2.0, 1)))
    assert started.calls == [(9, 3, FINAL)] and ended.calls == [(9, 3, FINAL)], "started, then ended, once"
    assert tl.segments(1)[0].revision == 3


def test_target_switch_and_person_filters():
    tl, (target, anyone, two) = timeline_with(
        ("started", "walking", {}), ("started", "walking", {"person": "any"}), ("started", "walking", {"person": 2})
    )
    tl.ingest_segments(msg(1, 1, seg(1, 0, 0.0, 1.0, 0)))
    tl.ingest_tracks(tracks(2, 1.5))  # the target switches to person 2
    assert tl.target().person_id == 2 and tl.target().grounding_score == 0.7 and tl.target().query == "the man"
    tl.ingest_segments(msg(1, 2, seg(2, 0, 1.5, 2.0, 0)))  # person 1 again: not the target any more
    tl.ingest_segments(msg(2, 2, seg(3, 0, 1.5, 2.0, 0)))
    assert [c[0] for c in target.calls] == [1, 3]
    assert [c[0] for c in anyone.calls] == [1, 2, 3]
    assert [c[0] for c in two.calls] == [3]


def test_person_leaving_closes_and_queries_answer():
    tl, (ended,) = timeline_with(("ended", "walking", {"min_confidence": 0.5}))
    tl.ingest_segments(msg(1, 3, seg(1, 0, 0.0, 3.0, 0), seg(2, 2, 2.0, 3.0, 0, conf=0.6)))
    now = tl.current_actions()
    assert [s.label for s in now] == ["walking", "waving"], "most confident first"
    assert [s.label for s in tl.current_actions(1, at=round(1.0 * S))] == ["walking"]
    assert [s.segment_id for s in tl.segments(1, since=round(2.5 * S), status=ONGOING)] == [1, 2]
    assert tl.segments(1, until=round(1.0 * S))[0].segment_id == 1
    # the track is lost: the node publishes the open segments once more, FINAL
    tl.ingest_segments(msg(1, 3.2, seg(1, 0, 0.0, 3.0, 1, FINAL), seg(2, 2, 2.0, 3.0, 1, FINAL, conf=0.6)))
    assert ended.calls == [(1, 1, FINAL)]
    assert tl.current_actions(2) == [] and tl.labels == LABELS


def test_memory_is_bounded_by_the_horizon():
    tl = ActionTimeline(horizon_s=10)
    for i in range(1000):
        tl.ingest_segments(msg(1, i + 0.5, seg(i + 1, 0, i, i + 0.5, 0, FINAL)))
    assert len(tl._segments) <= 12 and len(tl._done) <= 12 and len(tl._person_of_target) <= 12


def test_threads_ingest_concurrently():
    tl, (started,) = timeline_with(("started", "walking", {"person": "any"}))

    def feed(person):
        for i in range(200):
            tl.ingest_segments(msg(person, i * 0.1, seg(person * 1000 + i, 0, i * 0.1, i * 0.1, 0)))

    threads = [threading.Thread(target=feed, args=(p,)) for p in (1, 2, 3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(started.calls) == len({c[0] for c in started.calls}) == 600


def test_importing_the_client_loads_no_model_code():
    code = "import sys, rhas_ros.client; print([m for m in ('torch', 'transformers', 'hopadiff') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
