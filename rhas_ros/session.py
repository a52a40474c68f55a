"""One camera stream through the pipeline, as the messages rhas_node publishes.

rhas_node publishes these messages (rhas_ros.outputs); rhas_bag writes them into a bag. Both
admit frames through the same ``FrameGate`` (the stamp rule, decoding) and turn them into
messages through the same ``Session`` (upstream persons, the core pipeline, segment / track /
detection messages headed by the frame), so the same frames give the same messages whether
they arrive over DDS or are read from a recording.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from hopadiff.image_codec import ImageDecodeError
from rhas_msgs.msg import ActionLabels, ActionSegment, ActionSegmentArray, TrackedPersonArray

from . import conversions as conv
from .core.debug_image import current_actions, draw
from .core.intake import STAMP_EVENTS, Stamp, StampGate
from .core.persons import ExternalIds, PersonsInput
from .core.pipeline import FrameResult, PersonOutput, RhasPipeline
from .core.resolve import NodeConfig

PERSON_KEYS_KEPT = 1000  # person id -> upstream id remembered for closing messages
Warn = Callable[..., None]  # warn(message, key=None): the caller's throttled warning


@dataclass
class Messages:
    """What one step publishes, in publishing order (any part may be empty)."""

    tracks: TrackedPersonArray | None = None
    detections: Detection2DArray | None = None
    segments: list[tuple[ActionSegmentArray, str]] = field(default_factory=list)  # (message, ROS4HRI body id | '')
    debug: Image | None = None

    def __iadd__(self, other: Messages) -> Messages:
        self.tracks = other.tracks or self.tracks
        self.detections = other.detections or self.detections
        self.segments += other.segments
        self.debug = other.debug or self.debug
        return self


class FrameGate:
    """Which camera messages become frames, by header stamp (``StampGate``), and their pixels:
    what is refused or undecodable is counted in ``counts`` and warned about through ``warn``."""

    def __init__(self, counts: collections.Counter, warn: Warn):
        self.counts, self.warn = counts, warn
        self.stamps = StampGate()

    def admit(self, msg: Image | CompressedImage, config: NodeConfig) -> tuple[np.ndarray, bool] | None:
        """-> (RGB pixels, restart: the camera clock jumped and the stream starts anew with this
        frame), or None for a frame not kept (subsampled, a bad stamp, not decodable)."""
        self.counts["frames_in"] += 1
        s, stamp = config.settings, msg.header.stamp
        verdict = self.stamps.check(stamp.sec, stamp.nanosec, config.sample_fps, s.max_stamp_gap)
        if verdict is not Stamp.ACCEPTED:
            counter, warning = STAMP_EVENTS[verdict]
            self.counts[counter] += 1
            if warning:
                self.warn(warning.format(sec=stamp.sec, nanosec=stamp.nanosec, gap=self.stamps.gap_s),
                          key=verdict.value)  # fmt: skip
            if verdict not in (Stamp.BACKWARDS, Stamp.JUMPED):
                return None
        compressed = isinstance(msg, CompressedImage)
        try:
            rgb = (conv.compressed_to_rgb if compressed else conv.image_to_rgb)(msg, s.max_image_pixels)
        except (ImageDecodeError, ValueError) as e:
            self.counts["decode_errors"] += 1
            self.warn(f"skipping {'compressed image' if compressed else 'image'}: {e}")
            return None
        return rgb, verdict is not Stamp.ACCEPTED


class Session:
    """The pipeline of one configuration and what it has seen, producing messages. ``external``:
    upstream ids <-> integers (outlives a session: ids are never reused while the process runs)."""

    def __init__(self, pipeline: RhasPipeline, counts: collections.Counter, warn: Warn,
                 external: ExternalIds | None = None):  # fmt: skip
        self.pipe, self.counts, self.warn = pipeline, counts, warn
        self.external = ExternalIds() if external is None else external
        self.person_keys: collections.OrderedDict[int, str] = collections.OrderedDict()  # person id -> upstream id
        self.last_frame: tuple[Header, tuple[int, int]] = (Header(), (0, 0))  # newest processed: closing messages
        self.current: dict[int, str] = {}  # person id -> current actions, for the debug image

    @property
    def labels(self) -> list[str]:
        return self.pipe.labels

    def labels_msg(self, stamp) -> ActionLabels:
        trained = self.pipe.config.trained
        return ActionLabels(header=Header(stamp=stamp), checkpoint=trained.path, multi_label=trained.multi_label,
                            labels=list(trained.labels))  # fmt: skip

    # ------------------------------------------------------------------ steps
    def frame(self, rgb: np.ndarray, header: Header, upstream: PersonsInput | None = None,
              debug: bool = False) -> tuple[Messages, FrameResult]:  # fmt: skip
        """One admitted frame -> its messages and the pipeline's result. ``upstream``: with
        ``detector: external``, the persons message matched to this frame (None: none matched, the
        frame is processed with nobody in it and counted); ``debug``: draw the debug image."""
        pipe = self.pipe
        ns = conv.stamp_to_ns(header.stamp)
        size = (rgb.shape[1], rgb.shape[0])
        persons = None
        if pipe.config.settings.detector == "external":
            if upstream is None:
                self.counts["frames_without_persons"] += 1
                self.warn(f"no persons message within {pipe.config.settings.persons_stamp_tolerance} s of an "
                          "image stamp")  # fmt: skip
                upstream = PersonsInput.empty()
            boxes, scores, keys, rejected = upstream.in_pixels(*size)
            if rejected:
                self.counts["persons_rejected"] += rejected
                self.warn(f"{rejected} person box(es) dropped: not finite, empty, outside the image or outside "
                          "[0, 1] (normalised)", key="persons-rejected")  # fmt: skip
            persons = (boxes, scores, self.external.ints(keys))
        result = pipe.process(rgb, ns, persons)
        self.counts["frames_processed"] += 1
        self.last_frame = (header, size)
        for t in result.tracks:  # a frame without the person's box (a ROS4HRI roi late or missing) keeps its key
            key = self.external.key(t.external_id)
            if key or t.track_id not in self.person_keys:
                self.person_keys[t.track_id] = key
                self.person_keys.move_to_end(t.track_id)
        while len(self.person_keys) > PERSON_KEYS_KEPT:
            self.person_keys.popitem(last=False)
        out = Messages(
            tracks=conv.tracked_persons(result, pipe.query, header, size, self.external.key),
            detections=conv.detection_array(result, header, size),
            segments=self._segments(result.outputs),
        )
        current_actions(result, pipe.labels, self.current)
        if debug:
            img = draw(rgb, result, pipe.labels, self.current)
            data, step = conv.encode_bgr(img)
            out.debug = Image(header=header, height=img.shape[0], width=img.shape[1], encoding="bgr8", step=step,
                              data=data)  # fmt: skip
        return out, result

    def query(self, text: str) -> Messages:
        """A referring text (empty: cleared) -> the closing messages of the segments it ends."""
        return Messages(segments=self._segments(self.pipe.set_query(text)[1]))

    def restart(self) -> Messages:
        """The camera clock jumped: every open segment closed (headed by the last frame before the
        jump), tracks and windows forgotten."""
        return Messages(segments=self._segments(self.pipe.reset()))

    close = restart  # deactivate, shutdown, the end of a bag: the same closing

    def _segments(self, outputs: list[PersonOutput]) -> list[tuple[ActionSegmentArray, str]]:
        """Segment messages headed by the newest processed frame (closing messages too)."""
        header, size = self.last_frame
        msgs = []
        for out in outputs:
            msg = conv.segment_array(out, self.pipe.labels, header, size)
            self.counts["segment_msgs"] += 1
            self.counts["segments_closed"] += sum(s.status == ActionSegment.STATUS_FINAL for s in msg.segments)
            msgs.append((msg, self.person_keys.get(out.person_id, "")))
        return msgs
