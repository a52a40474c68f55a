"""The bag rhas_bag writes: what rhas_node would publish, on the node's topics, readable by rosbags,
`ros2 bag info` / `ros2 bag play` and Foxglove.

Messages are serialised by rclpy (the bytes the node puts on the wire) and written with rosbags'
rosbag2 writer (mcap or sqlite3, metadata.yaml). The message definitions embedded in the bag
(and their RIHS01 type hashes) come from the installed interface packages' .msg files, so a
reader needs no ROS install and no copy of rhas_msgs. Nothing half-written is left under the
output name: the bag is written in a hidden folder beside it and moved into place when closed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ament_index_python.packages import get_package_share_path
from rclpy.serialization import serialize_message
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from hopadiff.bags import BagError

from .. import qos

OWN_PACKAGES = ("rhas_msgs", "vision_msgs")  # not in rosbags' Kilted store: read from their installed .msg files
STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_UNSET = QosTime(0, 0)  # deadline, lifespan, lease: the defaults (infinite)


def typestore():
    """rosbags' ROS 2 Kilted types plus rhas_msgs and vision_msgs from their installed definitions."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for pkg in OWN_PACKAGES:
        for f in sorted((get_package_share_path(pkg) / "msg").glob("*.msg")):
            types.update(get_types_from_msg(f.read_text(), f"{pkg}/msg/{f.stem}"))
    store.register(types)
    return store


def offered(profile) -> Qos:
    """An rclpy QoS profile as rosbag2 records it (what `ros2 bag play` offers on replay)."""
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=profile.depth,
        reliability=QosReliability[profile.reliability.name],
        durability=QosDurability[profile.durability.name],
        deadline=_UNSET,
        lifespan=_UNSET,
        liveliness=QosLiveliness.SYSTEM_DEFAULT,
        liveliness_lease_duration=_UNSET,
        avoid_ros_namespace_conventions=False,
    )


class OutputBag:
    """``topics``: role -> (topic, message type name, rclpy QoS profile). ``write(role, msg, log_ns)``
    serialises and writes;
    ``close`` finishes the bag and moves it to ``path`` (replacing an older one when ``overwrite``);
    ``abort`` removes everything written."""

    def __init__(self, path: Path, topics: dict[str, tuple[str, object]], storage: str = "mcap",
                 overwrite: bool = False, custom_data: dict[str, str] | None = None):  # fmt: skip
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise BagError(f"{self.path} exists: choose another --output or pass --overwrite")
        self.overwrite = overwrite
        self._tmp = self.path.parent / f".{self.path.name}.partial"
        shutil.rmtree(self._tmp, ignore_errors=True)  # left by a run that was killed
        self._tmp.mkdir(parents=True)
        self.writer = Writer(self._tmp / self.path.name, version=9, storage_plugin=STORAGE[storage])
        for key, value in (custom_data or {}).items():
            self.writer.set_custom_data(key, value)
        self.writer.open()
        store = typestore()
        self.conns = {
            role: self.writer.add_connection(topic, msgtype, typestore=store, offered_qos_profiles=[offered(qos)])
            for role, (topic, msgtype, qos) in topics.items()
        }
        self.counts = {topic: 0 for topic, _, _ in topics.values()}  # messages written per topic

    def has(self, role: str) -> bool:
        return role in self.conns

    def write(self, role: str, msg, log_ns: int) -> None:
        conn = self.conns[role]
        self.writer.write(conn, log_ns, serialize_message(msg))
        self.counts[conn.topic] += 1

    def close(self) -> Path:
        self.writer.close()
        if self.path.exists():  # overwrite, checked at open: the old bag goes only now the new one is whole
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        (self._tmp / self.path.name).rename(self.path)
        self._tmp.rmdir()
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def absolute(name: str) -> str:
    """A topic parameter resolved as rhas_node resolves it in the root namespace."""
    return "/rhas_node/" + name[2:] if name.startswith("~/") else "/" + name.lstrip("/")


def node_topics(s, debug_images: bool) -> dict[str, tuple[str, str, object]]:
    """What rhas_node publishes: role -> (topic, message type, QoS)."""
    topics = {
        "labels": (absolute(s.labels_topic), "rhas_msgs/msg/ActionLabels", qos.latched()),
        "segments": (absolute(s.segments_topic), "rhas_msgs/msg/ActionSegmentArray", qos.reliable()),
        "tracks": (absolute(s.tracks_topic), "rhas_msgs/msg/TrackedPersonArray", qos.reliable()),
        "detections": (absolute(s.detections_topic), "vision_msgs/msg/Detection2DArray", qos.reliable()),
    }
    if debug_images:
        topics["debug"] = (absolute("~/debug_image"), "sensor_msgs/msg/Image", qos.debug_image())
    return topics
