"""rhas_ros.client: what a robot behaviour node needs from rhas_node's output, without the model.

``ActionTimeline`` ingests the node's messages (``ActionSegmentArray`` on action_segments,
``ActionLabels`` on action_labels, ``TrackedPersonArray`` on tracked_persons) and does the
bookkeeping every consumer would otherwise write: the highest revision per segment id wins,
older and duplicate revisions are ignored, a FINAL segment with confidence 0 is a retraction
(the segment is removed), and callbacks fire exactly once per real start and end of an action.

    timeline = ActionTimeline()
    timeline.attach(node)  # subscribes the three topics on an rclpy node
    timeline.on_action_started("falling", lambda seg: print("fell!", seg), min_duration=0.5)
    timeline.current_actions()  # what the referred person is doing now

Imports neither torch nor the model (a test checks it); thread-safe (one lock; callbacks run
outside it); memory bounded by ``horizon_s`` of camera time.

Callback rules. A segment *qualifies* for a subscription when its class, person (``"target"``:
the person who is the referred target when the segment arrives; ``"any"``; or a person id),
confidence (>= ``min_confidence``) and duration (end - start >= ``min_duration`` seconds) match.
``on_action_started`` fires once for a segment id, on the first revision that qualifies;
``on_action_ended`` fires once, when the segment becomes FINAL with a confidence above 0 and
qualifies (a segment that arrives FINAL at once fires started, then ended). A retracted segment
never fires ``ended``; it fires ``started`` only if an earlier revision had already qualified
(``min_duration`` is the guard against short-lived guesses).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from rhas_msgs.msg import ActionLabels, ActionSegment, ActionSegmentArray, TrackedPersonArray

from . import qos

ONGOING, FINAL = ActionSegment.STATUS_ONGOING, ActionSegment.STATUS_FINAL  # segment status: the message's values
TARGET, ANY = "target", "any"


def _ns(t) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


@dataclass(frozen=True)
class Segment:
    """One action of one person, as the latest revision received describes it (stamps: camera ns)."""

    segment_id: int
    person_id: int
    class_id: int
    label: str
    start_ns: int
    end_ns: int
    confidence: float
    revision: int
    status: int

    @property
    def final(self) -> bool:
        return self.status == FINAL

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class Target:
    person_id: int | None  # None: no person is grounded to the query
    query: str
    grounding_score: float


@dataclass
class _Subscription:
    event: str  # "started" | "ended"
    action: str | int
    callback: Callable[[Segment], None]
    person: str | int
    min_confidence: float
    min_duration: float
    fired: set


class ActionTimeline:
    def __init__(self, horizon_s: float = 600.0):
        self.horizon_ns = int(horizon_s * 1e9)
        self._lock = threading.RLock()
        self._segments: dict[int, Segment] = {}  # segment id -> latest revision (retractions removed)
        self._done: dict[int, int] = {}  # ids that ended (FINAL) -> end stamp: later copies are ignored
        self._labels: list[str] = []
        self._multi_label = True
        self._target = Target(None, "", 0.0)
        self._person_of_target: dict[int, bool] = {}  # segment id -> was its person the target on arrival
        self._newest_ns = 0  # newest camera stamp seen (the timeline's "now")
        self._newest_by_person: dict[int, int] = {}
        self._subs: list[_Subscription] = []

    # ------------------------------------------------------------------ input
    def ingest_labels(self, msg) -> None:
        with self._lock:
            self._labels = list(msg.labels)
            self._multi_label = bool(msg.multi_label)

    def ingest_tracks(self, msg) -> None:
        """tracked_persons: who the target is (person id, query, grounding score)."""
        with self._lock:
            tid = int(msg.target_person_id)
            score = next((float(p.grounding_score) for p in msg.persons if p.person_id == tid), 0.0)
            self._target = Target(tid if tid >= 0 else None, msg.query, score)
            self._advance(_ns(msg.header.stamp))

    def ingest_segments(self, msg) -> None:
        """One ActionSegmentArray (in any order, duplicates allowed)."""
        fire: list[tuple[Callable, Segment]] = []
        with self._lock:
            pid = int(msg.person_id)
            stamp = _ns(msg.header.stamp)
            self._newest_by_person[pid] = max(self._newest_by_person.get(pid, 0), stamp)
            self._advance(stamp)
            for s in msg.segments:
                fire += self._ingest_one(pid, s)
        for callback, seg in fire:
            callback(seg)

    def _ingest_one(self, pid: int, s) -> list:
        sid = int(s.segment_id)
        if sid in self._done:
            return []  # FINAL already received: nothing about it changes any more
        old = self._segments.get(sid)
        if old is not None and int(s.revision) <= old.revision:
            return []  # a duplicate or an older revision arriving late
        end_ns = _ns(s.end)
        if self._newest_ns - end_ns > self.horizon_ns:
            return []  # older than the horizon
        label = s.label or (self._labels[s.class_id] if 0 <= s.class_id < len(self._labels) else str(s.class_id))
        seg = Segment(sid, pid, int(s.class_id), label, _ns(s.start), end_ns, float(s.confidence), int(s.revision),
                      int(s.status))  # fmt: skip
        if sid not in self._person_of_target:
            self._person_of_target[sid] = self._target.person_id == pid
        retracted = seg.final and seg.confidence <= 0.0
        if seg.final:
            self._done[sid] = end_ns
        if retracted:
            self._segments.pop(sid, None)
        else:
            self._segments[sid] = seg
        fire = []
        # "started" subscriptions first: a segment that arrives FINAL at once starts, then ends
        for sub in sorted(self._subs, key=lambda x: x.event != "started"):
            if sid in sub.fired or retracted or not self._qualifies(sub, seg):
                continue
            if sub.event == "started" or seg.final:
                sub.fired.add(sid)
                fire.append((sub.callback, seg))
        return fire

    def _qualifies(self, sub: _Subscription, seg: Segment) -> bool:
        if isinstance(sub.action, str) and sub.action != seg.label:
            return False
        if isinstance(sub.action, int) and sub.action != seg.class_id:
            return False
        if sub.person == TARGET and not self._person_of_target.get(seg.segment_id, False):
            return False
        if isinstance(sub.person, int) and sub.person != seg.person_id:
            return False
        return seg.confidence >= sub.min_confidence and seg.duration_s >= sub.min_duration

    def _advance(self, stamp: int) -> None:
        """Move "now" forward and forget what left the horizon (bounded memory)."""
        if stamp <= self._newest_ns:
            return
        self._newest_ns = stamp
        limit = stamp - self.horizon_ns
        for sid in [sid for sid, seg in self._segments.items() if seg.final and seg.end_ns < limit]:
            del self._segments[sid]
        for sid in [sid for sid, end in self._done.items() if end < limit]:
            del self._done[sid]
            self._person_of_target.pop(sid, None)
            for sub in self._subs:
                sub.fired.discard(sid)
        for sid in [sid for sid in self._person_of_target if sid not in self._segments and sid not in self._done]:
            del self._person_of_target[sid]

    # ------------------------------------------------------------------ queries
    @property
    def labels(self) -> list[str]:
        with self._lock:
            return list(self._labels)

    def target(self) -> Target:
        with self._lock:
            return self._target

    def segments(self, person_id: int | None = None, since=None, until=None, status=None) -> list[Segment]:
        """A person's segments (None: the current target) overlapping [since, until] (camera ns),
        optionally only ONGOING or FINAL ones; ordered by start."""
        with self._lock:
            pid = self._target.person_id if person_id is None else person_id
            out = [
                s for s in self._segments.values()
                if s.person_id == pid and (status is None or s.status == status)
                and (since is None or s.end_ns >= since) and (until is None or s.start_ns <= until)
            ]  # fmt: skip
        return sorted(out, key=lambda s: (s.start_ns, s.class_id))

    def current_actions(self, person_id: int | None = None, at: int | None = None) -> list[Segment]:
        """What a person (None: the current target) is doing at camera time ``at`` (None: now, the
        newest frame the node published for that person), most confident first."""
        with self._lock:
            pid = self._target.person_id if person_id is None else person_id
            if pid is None:
                return []
            when = self._newest_by_person.get(pid, self._newest_ns) if at is None else at
            found = [s for s in self.segments(pid) if s.start_ns <= when <= s.end_ns]
        return sorted(found, key=lambda s: -s.confidence)

    # ------------------------------------------------------------------ callbacks
    def on_action_started(self, action: str | int, callback, person: str | int = TARGET,
                          min_confidence: float = 0.0, min_duration: float = 0.0) -> _Subscription:  # fmt: skip
        """``callback(segment)`` once per segment of ``action`` (label or class id) that starts."""
        return self._subscribe("started", action, callback, person, min_confidence, min_duration)

    def on_action_ended(self, action: str | int, callback, person: str | int = TARGET,
                        min_confidence: float = 0.0, min_duration: float = 0.0) -> _Subscription:  # fmt: skip
        """``callback(segment)`` once per segment of ``action`` that ended (FINAL, not retracted)."""
        return self._subscribe("ended", action, callback, person, min_confidence, min_duration)

    def remove(self, subscription: _Subscription) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s is not subscription]

    def _subscribe(self, event, action, callback, person, min_confidence, min_duration) -> _Subscription:
        if person not in (TARGET, ANY) and not isinstance(person, int):
            raise ValueError(f"person={person!r}: use 'target', 'any' or a person id")
        sub = _Subscription(event, action, callback, person, float(min_confidence), float(min_duration), set())
        with self._lock:
            self._subs.append(sub)
        return sub

    # ------------------------------------------------------------------ ROS
    def attach(self, node, segments_topic="action_segments", labels_topic="action_labels",
               tracks_topic="tracked_persons") -> list:  # fmt: skip
        """Subscribe the timeline to rhas_node's topics on an rclpy node; returns the subscriptions."""
        return [
            node.create_subscription(
                ActionSegmentArray,
                segments_topic,
                self.ingest_segments,
                qos.consumer(),
                qos_overriding_options=qos.overridable(),
            ),
            node.create_subscription(
                ActionLabels, labels_topic, self.ingest_labels, qos.latched(), qos_overriding_options=qos.overridable()
            ),
            node.create_subscription(
                TrackedPersonArray,
                tracks_topic,
                self.ingest_tracks,
                qos.consumer(),
                qos_overriding_options=qos.overridable(),
            ),
        ]
