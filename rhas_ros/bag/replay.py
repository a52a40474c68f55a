"""rhas_bag's work: a recording through rhas_node's pipeline, every sampled frame, into a bag.

The node's own parts do the work: ``FrameGate`` (the sample_fps / stamp rule, decoding),
``TextGate`` (cleaning texts), the ``Inbox``'s persons-by-stamp matching, and ``Session`` (the
core pipeline and the messages), so the output is what rhas_node publishes for these frames.
What differs is only the delivery: nothing is dropped (the node's latest-wins queue does not
exist here), messages come in stamp order (hopadiff.bags.in_stamp_order), and each output is
logged at the recorded time of the message that caused it.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from hopadiff.bags import COMPRESSED, Entry, image_topic
from rhas_msgs.msg import ActionSegment, TrackedPersonArray

from .. import conversions as conv
from ..core.intake import Inbox, TextGate
from ..core.persons import HRI_ID
from ..core.pipeline import RhasPipeline
from ..core.settings import Settings
from ..session import FrameGate, Messages, Session
from .output import OutputBag, absolute

HRI_ROI = re.compile(r"^/humans/bodies/([^/]+)/roi$")
PERSONS_TYPES = {
    "tracked_persons": ("rhas_msgs/msg/TrackedPersonArray", TrackedPersonArray),
    "detection2d": ("vision_msgs/msg/Detection2DArray", Detection2DArray),
}
HRI_ROI_TYPE = "hri_msgs/msg/NormalizedRegionOfInterest2D"


@dataclass
class Topics:
    """Which topics of the input bag are what rhas_node would subscribe to."""

    image: str
    image_type: str
    text: str | None = None  # std_msgs/String, texts at their recorded times
    persons: list[str] = field(default_factory=list)  # detector external: the upstream persons topics

    @property
    def all(self) -> list[str]:
        return [self.image, *([self.text] if self.text else []), *self.persons]


def choose_topics(reader, s, path) -> Topics:
    """The input topics as rhas_node would subscribe them: the camera (``image_topic``, with
    /compressed when ``use_compressed``; left at its default, the bag's only image topic), the
    text topic when the bag has it, the persons topics for ``detector: external``. BagError or
    ValueError names what the bag lacks."""
    types = {c.topic: c.msgtype for c in reader.connections}
    wanted = absolute(s.image_topic) + ("/compressed" if s.use_compressed else "")
    default = s.image_topic == Settings.image_topic and not s.use_compressed
    image, image_type = image_topic(reader, path, None if default and wanted not in types else wanted)
    text = absolute(s.text_topic)
    topics = Topics(image, image_type, text if types.get(text) == "std_msgs/msg/String" else None)
    if s.detector == "external":
        topics.persons = choose_persons(s, types, path)
        if not topics.persons:
            raise ValueError(f"{path}: detector external (hri) reads /humans/bodies/<id>/roi ({HRI_ROI_TYPE}); the "
                             "bag has none")  # fmt: skip
    return topics


def choose_persons(s, types: dict[str, str], path) -> list[str]:
    """The persons topics for ``detector: external`` (ValueError naming what is missing)."""
    if s.external_type == "hri":
        return sorted(t for t, m in types.items() if HRI_ROI.match(t) and m == HRI_ROI_TYPE)
    msgtype = PERSONS_TYPES[s.external_type][0]
    topic = absolute(s.persons_topic)
    if types.get(topic) != msgtype:
        have = types.get(topic, "nothing")
        raise ValueError(f"{path}: detector external ({s.external_type}) reads {msgtype} on {topic}; the bag has "
                         f"{have} there")  # fmt: skip
    return [topic]


@dataclass
class Result:
    """What a run did: the node's counters and what was written."""

    counts: collections.Counter
    written: dict[str, int]
    wall_s: float
    interrupted: bool
    track_ids: set[int]
    target_ids: set[int]
    final_segments: dict[tuple[int, int], str]  # (person id, segment id) -> label
    texts: list[str]
    texts_ignored: int = 0

    @property
    def processed_fps(self) -> float:
        return self.counts["frames_processed"] / self.wall_s if self.wall_s > 0 else 0.0


class Replay:
    """``out``: the output bag, opened with rhas_ros.bag.output.node_topics (a debug image is drawn
    when it has that topic); ``warn(message, key=None)`` and ``info(message)``: the log."""

    def __init__(self, pipeline: RhasPipeline, topics: Topics, out: OutputBag, warn: Callable, info: Callable):
        self.pipe, self.topics, self.out, self.info = pipeline, topics, out, info
        self.counts: collections.Counter = collections.Counter()
        self.gate = FrameGate(self.counts, warn)
        self.session = Session(pipeline, self.counts, warn)
        self.texts = TextGate()
        self.persons = Inbox(self.counts)  # persons by stamp, matched to frames as the node matches them
        self.image_cls = CompressedImage if topics.image_type == COMPRESSED else Image
        self.last_log_ns: int | None = None
        self.labels_written = False
        self.track_ids: set[int] = set()
        self.target_ids: set[int] = set()
        self.final: dict[tuple[int, int], str] = {}
        self.applied_texts: list[str] = []

    # ------------------------------------------------------------------ input
    def persons_first(self, stream: Iterable[tuple[str, int, bytes]]) -> Iterator[tuple[str, int, bytes]]:
        """Persons messages go to the by-stamp store as they are read (the frame they belong to may
        come before or after them in the recording); images and texts pass on."""
        kind = self.pipe.config.settings.external_type
        for topic, log_ns, raw in stream:
            if topic not in self.topics.persons:
                yield topic, log_ns, raw
                continue
            if kind == "hri":
                msg = deserialize_message(raw, self._roi_type())
                body = HRI_ROI.match(topic).group(1)
                if not HRI_ID.match(body):
                    self.counts["persons_rejected"] += 1
                    continue
                persons, merge = conv.person_from_hri_roi(body, msg), True
            else:
                msg = deserialize_message(raw, PERSONS_TYPES[kind][1])
                persons, merge = conv.persons_from_message(msg, self.pipe.config.settings.person_classes,
                                                           self.counts), False  # fmt: skip
            self.persons.put_persons(conv.stamp_to_ns(msg.header.stamp), persons, merge)

    @staticmethod
    def _roi_type():
        from hri_msgs.msg import NormalizedRegionOfInterest2D  # only where it is used (built from source)

        return NormalizedRegionOfInterest2D

    # ------------------------------------------------------------------ the run
    def run(self, entries: Iterable[Entry], text: str | None, stop: Callable[[], bool],
            progress: Callable[[int], None] = lambda n: None) -> Result:  # fmt: skip
        started = time.monotonic()
        interrupted, ignored = False, 0
        if text is not None:
            self._text(text, None)
        s = self.pipe.config.settings
        for e in entries:
            if stop():
                interrupted = True
                break
            if e.topic == self.topics.text:
                if text is not None:
                    ignored += 1  # --text replaces the recorded texts
                else:
                    self._text(deserialize_message(e.raw, String).data, e.log_ns)
                continue
            msg = deserialize_message(e.raw, self.image_cls)
            admitted = self.gate.admit(msg, self.pipe.config)
            progress(1)
            if admitted is None:
                continue
            rgb, restart = admitted
            if restart:
                self._write(self.session.restart(), e.log_ns)
            upstream = None
            if s.detector == "external":
                upstream = self.persons.persons_for(conv.stamp_to_ns(msg.header.stamp), s.persons_stamp_tolerance, 0)
            msgs, result = self.session.frame(rgb, msg.header, upstream, debug=self.out.has("debug"))
            self.track_ids |= {t.track_id for t in result.tracks}
            if result.target_id is not None:
                self.target_ids.add(result.target_id)
            self._write(msgs, e.log_ns)
        self._write(self.session.close(), self.last_log_ns or 0)  # every open segment FINAL at the end
        if not self.labels_written:  # no frame processed: the labels all the same
            self.out.write("labels", self.session.labels_msg(conv.ns_to_stamp(0)), self.last_log_ns or 0)
        return Result(self.counts, dict(self.out.counts), time.monotonic() - started, interrupted, self.track_ids,
                      self.target_ids, self.final, self.applied_texts, ignored)  # fmt: skip

    def _text(self, raw: str, log_ns: int | None) -> None:
        s = self.pipe.config.settings
        event = self.texts.receive(raw, b"", None, s.max_text_chars, s.log_referring_text)
        if event.log:
            self.info(event.log)
        self.applied_texts.append(event.text)
        self._write(self.session.query(event.text), log_ns if log_ns is not None else self.last_log_ns or 0)

    def _write(self, msgs: Messages, log_ns: int) -> None:
        """One step's messages, logged at the recorded time of what caused them (never earlier than
        what is already written)."""
        log_ns = max(log_ns, self.last_log_ns or 0)
        if msgs.tracks is not None and not self.labels_written:  # the latched labels, before the first frame's
            self.out.write("labels", self.session.labels_msg(msgs.tracks.header.stamp), log_ns)
            self.labels_written = True
        if msgs.tracks is not None:
            self.out.write("tracks", msgs.tracks, log_ns)
        if msgs.detections is not None:
            self.out.write("detections", msgs.detections, log_ns)
        for msg, _body in msgs.segments:
            self.out.write("segments", msg, log_ns)
            for seg in msg.segments:
                if seg.status == ActionSegment.STATUS_FINAL:
                    self.final[(msg.person_id, seg.segment_id)] = seg.label
        if msgs.debug is not None:
            self.out.write("debug", msgs.debug, log_ns)
        self.last_log_ns = log_ns
