"""Pipeline results and images <-> ROS messages: the ROS layer's translation to and from the ROS-free core."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from hopadiff.image_codec import ImageDecodeError, decode_compressed, decode_raw
from rhas_msgs.msg import ActionSegment, ActionSegmentArray, TrackedPerson, TrackedPersonArray

from .core.persons import PersonsInput

if TYPE_CHECKING:
    from .core.pipeline import PersonOutput

_BRIDGE = None


def stamp_to_ns(t: Time) -> int:
    return int(t.sec) * 1_000_000_000 + int(t.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def roi(box, width: int | None = None, height: int | None = None) -> RegionOfInterest:
    """An xywh box as a RegionOfInterest inside a width x height image (a track predicted past the
    image's edge, or kept from a larger frame, is cut to the image: empty when wholly outside)."""
    x, y, w, h = (max(0.0, float(v)) for v in box)
    if width is not None:
        x = min(x, float(width))
        w = min(w, max(0.0, width - x))
    if height is not None:
        y = min(y, float(height))
        h = min(h, max(0.0, height - y))
    return RegionOfInterest(x_offset=int(x), y_offset=int(y), width=int(w), height=int(h))


def cv_bridge_available() -> bool:
    try:
        import cv_bridge  # noqa: F401
    except ImportError:
        return False
    return True


def image_to_rgb(msg, max_pixels: int) -> np.ndarray:
    """sensor_msgs/Image -> RGB uint8: cv_bridge when installed, else the numpy decoder."""
    global _BRIDGE
    if cv_bridge_available() and msg.encoding.lower() in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"):
        from cv_bridge import CvBridge

        if msg.height * msg.width > max_pixels:  # the same bound as the numpy path
            raise ImageDecodeError(f"image {msg.width}x{msg.height} has more than max_image_pixels={max_pixels} pixels")
        _BRIDGE = _BRIDGE or CvBridge()
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8")
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian), max_pixels)


def compressed_to_rgb(msg, max_pixels: int) -> np.ndarray:
    return decode_compressed(msg.data, msg.format, max_pixels)


def segment_array(out: PersonOutput, labels: list[str], header: Header, size) -> ActionSegmentArray:
    """One person's segments; ``header``: the newest processed frame's (its stamp and camera frame),
    ``size``: that frame's (width, height), to which the ROI is clipped."""
    msg = ActionSegmentArray(
        header=header,
        person_id=int(out.person_id),
        query=out.query,
        grounding_confidence=float(out.grounding_confidence),
        roi=roi(out.box, *size),
        window_start=ns_to_stamp(out.window_start_ns),
        window_end=ns_to_stamp(out.window_end_ns),
    )
    msg.segments = [
        ActionSegment(
            segment_id=int(s.segment_id),
            revision=int(s.revision),
            status=int(s.status),
            start=ns_to_stamp(s.start_ns),
            end=ns_to_stamp(s.end_ns),
            class_id=int(s.class_id),
            label=labels[s.class_id],
            confidence=float(s.confidence),
        )
        for s in out.segments
    ]
    return msg


def tracked_persons(result, query: str, header: Header, size, external=lambda n: "") -> TrackedPersonArray:
    """The tracks of one frame; ``header`` and ``size``: that frame's; ``external(int)``: a track's
    upstream id string."""
    msg = TrackedPersonArray(
        header=header,
        query=query,
        target_person_id=-1 if result.target_id is None else int(result.target_id),
    )
    msg.persons = [
        TrackedPerson(
            person_id=int(t.track_id),
            roi=roi(t.box, *size),
            detection_confidence=float(t.score) if t.seen else 0.0,
            grounding_score=float(result.scores.get(t.track_id, 0.0)),
            is_target=t.track_id == result.target_id,
            age=int(t.age),
            frames_since_seen=int(t.missed),
            external_id=external(t.external_id),
        )
        for t in result.tracks
    ]
    return msg


def persons_from_tracked(msg: TrackedPersonArray) -> PersonsInput:
    """rhas_msgs/TrackedPersonArray (pixel boxes, integer ids)."""
    boxes = [[p.roi.x_offset, p.roi.y_offset, p.roi.width, p.roi.height] for p in msg.persons]
    scores = [p.detection_confidence or 1.0 for p in msg.persons]
    return PersonsInput(np.array(boxes, np.float64).reshape(-1, 4), np.array(scores, np.float64),
                        [str(p.person_id) for p in msg.persons])  # fmt: skip


def persons_from_detections(msg, person_classes) -> tuple[PersonsInput, int]:
    """vision_msgs/Detection2DArray -> (the person detections, how many detections were of other
    classes). A detection is a person when one of its hypotheses' class_id is in ``person_classes``
    (its score: the best such hypothesis'); ``id`` non-empty is the upstream track id."""
    boxes, scores, keys, others = [], [], [], 0
    for d in msg.detections:
        person = [r.hypothesis.score for r in d.results if r.hypothesis.class_id in person_classes]
        if not person:
            others += 1
            continue
        b = d.bbox
        boxes.append([b.center.position.x - b.size_x / 2, b.center.position.y - b.size_y / 2, b.size_x, b.size_y])
        scores.append(max(person))
        keys.append(d.id)
    return PersonsInput(np.array(boxes, np.float64).reshape(-1, 4), np.array(scores, np.float64), keys), others


def persons_from_message(msg, person_classes, counts) -> PersonsInput:
    """An upstream persons message (rhas_msgs/TrackedPersonArray or vision_msgs/Detection2DArray);
    detections of other classes are counted in ``counts["detections_not_person"]``."""
    if isinstance(msg, TrackedPersonArray):
        return persons_from_tracked(msg)
    persons, others = persons_from_detections(msg, person_classes)
    counts["detections_not_person"] += others
    return persons


def person_from_hri_roi(body_id: str, msg) -> PersonsInput:
    """One ROS4HRI body's hri_msgs/NormalizedRegionOfInterest2D (fractions of the image)."""
    box = [[msg.xmin, msg.ymin, msg.xmax - msg.xmin, msg.ymax - msg.ymin]]
    return PersonsInput(np.array(box, np.float64), np.array([msg.c or 1.0], np.float64), [body_id], normalized=True)


def detection_array(result, header: Header, size) -> Detection2DArray:
    """The tracks of one frame as vision_msgs: id = person_id, class "person", score = this frame's
    detection confidence (0 for a track predicted while unseen)."""
    msg = Detection2DArray(header=header)
    for t in result.tracks:
        r = roi(t.box, *size)
        det = Detection2D(header=header, id=str(t.track_id))
        det.bbox.center.position.x = r.x_offset + r.width / 2
        det.bbox.center.position.y = r.y_offset + r.height / 2
        det.bbox.size_x, det.bbox.size_y = float(r.width), float(r.height)
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = "person", float(t.score) if t.seen else 0.0
        det.results = [hyp]
        msg.detections.append(det)
    return msg


def encode_bgr(img: np.ndarray) -> tuple[bytes, int]:
    img = np.ascontiguousarray(img)
    return img.tobytes(), img.shape[1] * 3
