"""What rhas_node publishes, created at configure and destroyed at cleanup (lifecycle publishers:
silent while inactive). Every publisher's QoS can be overridden with the standard
``qos_overrides./<topic>.publisher.<policy>`` parameters (history, depth, reliability, durability).

- ``action_segments`` (rhas_msgs/ActionSegmentArray), ``action_labels`` (latched),
  ``tracked_persons`` (rhas_msgs/TrackedPersonArray), ``detections`` (vision_msgs/
  Detection2DArray: the same tracks for tools that know only vision_msgs), ``~/debug_image``;
- with ``external_type: hri`` and ``hri_actions``: each ROS4HRI body's segments also on
  ``/humans/bodies/<body_id>/actions``, where an HRI stack looks for everything about a body
  (a publisher per body while the body is in /humans/bodies/tracked, at most ``max_boxes``).
"""

from __future__ import annotations

import threading

from rclpy.publisher import Publisher
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from rhas_msgs.msg import ActionLabels, ActionSegmentArray, TrackedPersonArray

from . import qos
from .core.persons import HRI_ID
from .session import Messages


class Outputs:
    def __init__(self, node, settings):
        self.node = node
        self.hri_actions = settings.external_type == "hri" and settings.hri_actions
        self.max_bodies = settings.max_boxes
        make = node.create_lifecycle_publisher
        self.segments: Publisher = make(ActionSegmentArray, settings.segments_topic, qos.reliable(),
                                        qos_overriding_options=qos.overridable())  # fmt: skip
        self.labels_pub: Publisher = make(ActionLabels, settings.labels_topic, qos.latched(),
                                          qos_overriding_options=qos.overridable())  # fmt: skip
        self.tracks: Publisher = make(TrackedPersonArray, settings.tracks_topic, qos.reliable(),
                                      qos_overriding_options=qos.overridable())  # fmt: skip
        self.detections: Publisher = make(Detection2DArray, settings.detections_topic, qos.reliable(),
                                          qos_overriding_options=qos.overridable())  # fmt: skip
        self.debug: Publisher = make(
            Image, "~/debug_image", qos.debug_image(), qos_overriding_options=qos.overridable()
        )
        self._bodies: dict[str, Publisher] = {}  # ROS4HRI body id -> its actions publisher
        self._lock = threading.Lock()  # the executor makes body publishers, the worker publishes

    def destroy(self) -> None:
        self.track_bodies([])
        for pub in [self.segments, self.labels_pub, self.tracks, self.detections, self.debug]:
            self.node.destroy_lifecycle_publisher(pub)

    def publish(self, msgs: Messages) -> None:
        """One step's messages (rhas_ros.session); each segment message also on its ROS4HRI body's topic."""
        if msgs.tracks is not None:
            self.tracks.publish(msgs.tracks)
        if msgs.detections is not None:
            self.detections.publish(msgs.detections)
        for msg, body_id in msgs.segments:
            self.segments.publish(msg)
            if body_id:
                with self._lock:
                    pub = self._bodies.get(body_id)
                    if pub is not None:
                        pub.publish(msg)
        if msgs.debug is not None:
            self.debug.publish(msgs.debug)

    def track_bodies(self, ids: list[str]) -> None:
        """The ROS4HRI bodies tracked now (from /humans/bodies/tracked, on the executor's thread): an
        actions publisher for each (at most max_boxes, ids that make a topic name), none for the rest."""
        if not self.hri_actions:
            return
        wanted = [b for b in ids if HRI_ID.match(b)][: self.max_bodies]
        with self._lock:
            for body in [b for b in self._bodies if b not in wanted]:
                self.node.destroy_publisher(self._bodies.pop(body))
            for body in wanted:
                if body not in self._bodies:
                    self._bodies[body] = self.node.create_publisher(
                        ActionSegmentArray, f"/humans/bodies/{body}/actions", qos.reliable()
                    )
