"""Bags for the tests of rhas_bag and hopadiff-extract, written with rosbags (as a recorder would:
the messages serialised by rclpy, the definitions embedded), and read back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from footage import pan, vtest_frames
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray

from rhas_msgs.msg import ActionLabels, ActionSegmentArray, TrackedPersonArray
from rhas_ros.bag.output import typestore
from rhas_ros.conversions import ns_to_stamp, stamp_to_ns

T0 = 1_700_000_000 * 10**9  # camera and recorder clock of the first frame


def type_name(msg) -> str:
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


def write_bag(path: Path, entries, storage: str = "mcap") -> Path:
    """``entries``: (topic, log time ns, rclpy message), written in this order."""
    store = typestore()
    with Writer(path, version=9, storage_plugin=StoragePlugin[storage.upper()]) as w:
        conns = {}
        for topic, log_ns, msg in entries:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, type_name(msg), typestore=store)
            w.write(conns[topic], log_ns, serialize_message(msg))
    return path


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera", encoding: str = "rgb8") -> Image:
    return Image(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id), height=rgb.shape[0],
                 width=rgb.shape[1], encoding=encoding, step=rgb.shape[1] * 3, data=rgb.tobytes())  # fmt: skip


def jpeg_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera") -> CompressedImage:
    _, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return CompressedImage(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id), format="jpeg",
                           data=jpg.tobytes())  # fmt: skip


def pan_entries(
    frames: int = 200, fps: float = 25.0, text: str | None = "the person on the left", topic: str = "/image"
) -> list:
    """The panned vtest footage (test/helpers/footage.py) as a camera recording, the referring text
    recorded just before the first frame."""  # fmt: skip
    period = round(1e9 / fps)
    out = [("/referring_text", T0 - 1_000_000, String(data=text))] if text is not None else []
    return out + [(topic, T0 + k * period, image_msg(pan(k), T0 + k * period)) for k in range(frames)]


def vtest_entries(frames: int, fps: float = 10.0, scale: float = 0.5, text: str | None = "the person on the left"):
    """vtest.avi itself (test/helpers/footage.py; opencv-doc) as a camera recording: ``frames`` frames
    from the first, resized by ``scale``, the referring text recorded just before them."""
    period = round(1e9 / fps)
    out = [("/referring_text", T0 - 1_000_000, String(data=text))] if text is not None else []
    video = vtest_frames(0, frames, scale=scale)
    return out + [("/image", T0 + k * period, image_msg(rgb, T0 + k * period)) for k, rgb in enumerate(video)]


def read_raw(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """topic -> [(log time, serialised message)] in the order stored."""
    out: dict[str, list] = {}
    with Reader(path) as r:
        for conn, log_ns, raw in r.messages():
            out.setdefault(conn.topic, []).append((log_ns, bytes(raw)))
    return out


def decoded_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(log time, message deserialised by rclpy)] (rclpy messages compare by value)."""
    classes = {"/action_labels": ActionLabels, "/action_segments": ActionSegmentArray,
               "/tracked_persons": TrackedPersonArray, "/detections": Detection2DArray}  # fmt: skip
    return {t: [(log, deserialize_message(raw, classes[t])) for log, raw in v] for t, v in read_raw(path).items()}


def messages_of(path: Path, topic: str, cls) -> list:
    return [deserialize_message(raw, cls) for _, raw in read_raw(path).get(topic, [])]


def segment_msgs(path: Path) -> list[ActionSegmentArray]:
    return messages_of(path, "/action_segments", ActionSegmentArray)


def stamps_of(msgs) -> list[int]:
    return [stamp_to_ns(m.header.stamp) for m in msgs]
