"""ROS 2 recordings (rosbag2 folders, mcap or sqlite3, or a bare .mcap file) as a source of camera
frames, read with ``rosbags`` (pure Python: no ROS install needed). Used by rhas_bag (the node's
pipeline over a recording) and hopadiff-extract (training data from a robot's recordings).

- ``open_bag``: errors that name the bag (missing, ROS 1, truncated or corrupt);
- ``image_topic``: the camera topic, named or the only one;
- ``in_stamp_order``: messages by header stamp within a reorder window (recorders interleave
  topics; a bridge can deliver a frame late), while a jump back by more than the window — a bag
  recorded over a looping source, a clock reset — stays a discontinuity for the consumer to see;
- ``decode_image``: sensor_msgs/Image or CompressedImage bytes -> RGB (hopadiff.image_codec).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError
from rosbags.typesys import Stores, get_typestore

from .frames import DataError
from .image_codec import decode_compressed, decode_raw

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED)
NS = 1_000_000_000
REORDER_WINDOW_S = 1.0
REORDER_MAX_MESSAGES = 1000  # a reorder buffer never holds more (a camera repeating one stamp)


class BagError(DataError):
    """A bag cannot be used; the message names the bag and what is wrong."""


@contextlib.contextmanager
def open_bag(path: Path) -> Iterator[Reader]:
    """An open rosbags Reader; BagError for what is not a readable ROS 2 bag."""
    path = Path(path)
    if path.suffix == ".bag" and path.is_file():
        raise BagError(f"{path} is a ROS 1 bag: convert it first (rosbags-convert --src {path} --dst {path.stem})")
    if not path.exists():
        raise BagError(f"{path}: no such bag (a rosbag2 folder with metadata.yaml, or an .mcap file)")
    reader = Reader(path)
    try:
        reader.open()
    except FileNotFoundError as e:
        raise BagError(f"{path} is not a ROS 2 bag: {e}") from None
    except ReaderError as e:
        raise BagError(f"{path} cannot be read: {e} (truncated or corrupt? a recording that was not closed can be "
                       "repaired with `ros2 bag reindex`)") from None  # fmt: skip
    try:
        yield reader
    finally:
        reader.close()


def image_topic(reader: Reader, path: Path, wanted: str | None = None) -> tuple[str, str]:
    """-> (topic, message type) of the camera: ``wanted`` (it must be an image topic of the bag),
    else the bag's only image topic. BagError names what the bag has instead."""
    images = {c.topic: c.msgtype for c in reader.connections if c.msgtype in IMAGE_TYPES}
    listed = ", ".join(f"{t} ({m.rsplit('/', 1)[-1]})" for t, m in sorted(images.items())) or "none"
    if wanted:
        if wanted in images:
            return wanted, images[wanted]
        other = {c.topic: c.msgtype for c in reader.connections}.get(wanted)
        what = f"is {other}, not an image" if other else "is not in the bag"
        raise BagError(f"{path}: image topic {wanted} {what}; image topics in the bag: {listed}")
    if not images:
        topics = ", ".join(sorted({c.topic for c in reader.connections})) or "none"
        raise BagError(f"{path} has no image topic (sensor_msgs/Image or CompressedImage); its topics: {topics}")
    if len(images) > 1:
        raise BagError(f"{path} has {len(images)} image topics: {listed}; choose one (image_topic)")
    return next(iter(images.items()))


def header_stamp_ns(raw: bytes | memoryview) -> int | None:
    """The header stamp of a CDR-serialised message that starts with std_msgs/Header (every image,
    detection and region-of-interest message); None when the bytes are too short or the stamp is
    invalid (nanosec >= 1e9)."""
    if len(raw) < 12:
        return None
    little = raw[1] & 1  # the encapsulation header: CDR_LE = 0x0001, CDR_BE = 0x0000
    sec, nanosec = struct.unpack("<iI" if little else ">iI", bytes(raw[4:12]))
    if not 0 <= nanosec < NS:
        return None
    return sec * NS + nanosec


@dataclass(order=True)
class Entry:
    key: int  # header stamp, or for an unstamped message its log time in the stamp clock
    seq: int
    topic: str = field(compare=False)
    log_ns: int = field(compare=False)
    raw: bytes = field(compare=False)
    stamp_ns: int | None = field(compare=False)


def messages(reader: Reader, path: Path, topics: Iterable[str], start_ns: int | None = None,
             stop_ns: int | None = None) -> Iterator[tuple[str, int, bytes]]:  # fmt: skip
    """(topic, log time, raw CDR) of ``topics`` in log-time order; BagError when the bag breaks
    part way (a corrupt chunk, a truncated file)."""
    wanted = set(topics)
    conns = [c for c in reader.connections if c.topic in wanted]
    count = 0
    try:
        for conn, log_ns, raw in reader.messages(connections=conns, start=start_ns, stop=stop_ns):
            count += 1
            yield conn.topic, log_ns, raw
    except Exception as e:  # rosbags raises what the damaged bytes happen to trigger (OverflowError, ...)
        raise BagError(f"{path} is corrupt after {count} messages: {type(e).__name__}: {e}") from None


def in_stamp_order(stream: Iterable[tuple[str, int, bytes]], stamped: set[str],
                   window_s: float = REORDER_WINDOW_S) -> Iterator[Entry]:  # fmt: skip
    """``stream`` (log-time order) -> Entries in header-stamp order within ``window_s``.

    A message of a ``stamped`` topic is keyed by its header stamp; any other (a referring text) by
    its log time moved into the camera's clock (the stamp - log time offset of the last stamped
    message), so it keeps its place among the frames. A message is held until the newest key is
    ``window_s`` past it; one that goes back by more than the window flushes what is held first
    (a discontinuity, not jitter). Memory is bounded by the window and REORDER_MAX_MESSAGES."""
    window = round(window_s * NS)
    heap: list[Entry] = []
    newest: int | None = None
    offset = 0  # stamp - log time of the last stamped message
    seq = itertools.count()
    for topic, log_ns, raw in stream:
        stamp = header_stamp_ns(raw) if topic in stamped else None
        if stamp is not None:
            offset = stamp - log_ns
        key = stamp if stamp is not None else log_ns + offset
        if newest is not None and key < newest - window:
            while heap:  # a jump back: the stream before it ends first
                yield heapq.heappop(heap)
            newest = None
        heapq.heappush(heap, Entry(key, next(seq), topic, log_ns, bytes(raw), stamp))
        newest = key if newest is None else max(newest, key)
        while heap and (heap[0].key <= newest - window or len(heap) > REORDER_MAX_MESSAGES):
            yield heapq.heappop(heap)
    while heap:
        yield heapq.heappop(heap)


_TYPESTORE = None


def decode_image(raw: bytes, msgtype: str, max_pixels: int = 4096 * 4096) -> np.ndarray:
    """A serialised sensor_msgs/Image or CompressedImage -> RGB uint8 (ImageDecodeError names the
    encoding problem)."""
    global _TYPESTORE
    _TYPESTORE = _TYPESTORE or get_typestore(Stores.ROS2_KILTED)
    msg = _TYPESTORE.deserialize_cdr(raw, msgtype)
    if msgtype == COMPRESSED:
        return decode_compressed(msg.data.tobytes(), msg.format, max_pixels)
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian), max_pixels)


def _sampled(path: Path, topic: str, fps: float) -> Iterator[Entry]:
    """The camera messages kept for ``fps`` (0: all), in stamp order: one at least 1/fps after the
    previous kept one (the node's sample_fps rule); a frame that goes back in time is left out."""
    last = None
    with open_bag(path) as reader:
        for e in in_stamp_order(messages(reader, path, [topic]), {topic}):
            if e.stamp_ns is None:
                raise BagError(f"{path}: a message on {topic} at log time {e.log_ns} has an invalid header stamp")
            if last is not None and (e.stamp_ns <= last or (fps > 0 and e.stamp_ns - last < NS / fps)):
                continue
            last = e.stamp_ns
            yield e


def sampled_stamps(path: Path, topic: str, fps: float = 0.0) -> list[int]:
    """The header stamps of the frames ``read_bag_frames`` reads (nothing decoded)."""
    stamps = [e.stamp_ns for e in _sampled(path, topic, fps)]
    if not stamps:
        raise BagError(f"{path}: no frames on {topic}")
    return stamps


def read_bag_frames(path: Path, topic: str | None = None, fps: float = 0.0,
                    max_pixels: int = 4096 * 4096) -> tuple[list[int], list[np.ndarray]]:  # fmt: skip
    """The camera frames of a bag in stamp order -> (header stamps ns, RGB frames), sampled as
    ``sampled_stamps`` says. A frame that cannot be decoded is an error naming it (training data
    should not have holes)."""
    with open_bag(path) as reader:
        topic, msgtype = image_topic(reader, path, topic)
    stamps, frames = [], []
    for e in _sampled(path, topic, fps):
        try:
            frames.append(decode_image(e.raw, msgtype, max_pixels))
        except ValueError as err:
            raise BagError(f"{path}: {topic} frame stamped {e.stamp_ns / NS:.3f} s: {err}") from None
        stamps.append(e.stamp_ns)
    if not frames:
        raise BagError(f"{path}: no frames on {topic}")
    return stamps, frames


TRACKS = "rhas_msgs/msg/TrackedPersonArray"


def read_tracks(path: Path, topic: str = "/tracked_persons") -> dict[int, list[tuple]]:
    """rhas_msgs/TrackedPersonArray messages of a bag (rhas_bag's or rhas_node's output), decoded
    with the definitions embedded in the bag -> header stamp -> [(person_id, (x, y, w, h),
    is_target, seen this frame)]."""
    from rosbags.highlevel import AnyReader

    out: dict[int, list[tuple]] = {}
    with open_bag(path):  # the errors that name the bag
        pass
    with AnyReader([Path(path)]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns or conns[0].msgtype != TRACKS:
            have = ", ".join(sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections}))
            raise BagError(f"{path} has no {TRACKS} on {topic} (run rhas_bag on the recording to make the tracks); "
                           f"it has: {have}")  # fmt: skip
        for conn, _, raw in reader.messages(connections=conns):
            m = reader.deserialize(raw, conn.msgtype)
            stamp = m.header.stamp.sec * NS + m.header.stamp.nanosec
            out[stamp] = [(int(p.person_id), (p.roi.x_offset, p.roi.y_offset, p.roi.width, p.roi.height),
                           bool(p.is_target), int(p.frames_since_seen) == 0) for p in m.persons]  # fmt: skip
    return out
