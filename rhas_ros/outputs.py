"""What rhas_node publishes, created at configure and destroyed at cleanup (lifecycle publishers:
silent while inactive). Every publisher's QoS can be overridden with the standard
``qos_overrides./<topic>.publisher.<policy>`` parameters (history, depth, reliability, durability).

- ``action_segments`` (rhas_msgs/ActionSegmentArray), ``action_labels`` (latched),
  ``tracked_persons`` (rhas_msgs/TrackedPersonArray), ``detections`` (vision_msgs/
  Detection2DArray: the same tracks for tools that know only vision_msgs), ``~/debug_image``;
- with ``external_type: hri`` and ``hri_actions``: each ROS4HRI body's segments also on
  ``<prefix>/<body_id>/actions`` (``/humans/bodies/...`` by default: rhas_ros.hri), where an HRI
  stack looks for everything about a body: a publisher per body while the body is tracked (at
  most ``max_boxes``) and until its last segments were published FINAL there; QoS as
  ``action_segments`` resolved it (its overrides apply to every body's topic).
"""

from __future__ import annotations

import copy
import threading
import time

from rclpy.duration import Duration
from rclpy.publisher import Publisher
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from rhas_msgs.msg import ActionLabels, ActionSegment, ActionSegmentArray, TrackedPersonArray

from . import qos
from .hri import bodies_prefix, body_topic
from .session import Messages

BODY_LINGER_S = 5.0  # a body's publisher after its last FINAL, at most, while subscribers acknowledge


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
        self._open: dict[str, set[int]] = {}  # body id -> segments published ONGOING on it, not yet FINAL
        self._leaving: set[str] = set()  # bodies no longer tracked, whose publisher waits for their FINALs
        self._finished: dict[str, float] = {}  # leaving body -> when its last segment was published FINAL
        self._prefix = bodies_prefix(settings.hri_bodies_topic)
        self._lock = threading.Lock()  # the executor makes body publishers, the worker publishes

    def destroy(self) -> None:
        with self._lock:
            for body in list(self._bodies):
                self.node.destroy_publisher(self._bodies.pop(body))
            self._open, self._leaving, self._finished = {}, set(), {}
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
                        opened = self._open[body_id]
                        for seg in msg.segments:
                            (opened.discard if seg.status == ActionSegment.STATUS_FINAL else opened.add)(seg.segment_id)
                        self._close_finished()
        if msgs.debug is not None:
            self.debug.publish(msgs.debug)

    def track_bodies(self, ids: list[str]) -> None:
        """The ROS4HRI bodies tracked now (from the bodies list, on the executor's thread): an actions
        publisher for each (at most max_boxes, ids that make a topic name). A body that left keeps its
        publisher until every segment published ONGOING on it was published FINAL there (the
        closing message comes when its track is lost, or at deactivate)."""
        if not self.hri_actions:
            return
        with self._lock:
            self._leaving = {b for b in self._bodies if b not in ids}
            active = len(self._bodies) - len(self._leaving)
            for body in ids:
                topic = None if body in self._bodies else body_topic(self.node, self._prefix, body, "actions")
                if topic is None:
                    continue
                if active >= self.max_bodies:
                    break
                # the QoS action_segments resolved to (its qos_overrides included)
                profile = copy.copy(self.segments.qos_profile)
                profile.depth = max(profile.depth, qos.consumer().depth)  # a burst of a backlog's windows
                self._bodies[body] = self.node.create_publisher(ActionSegmentArray, topic, profile)
                self._open[body] = set()
                active += 1
            self._close_finished()

    def _close_finished(self) -> None:
        """Destroy the publishers of bodies that left and have no open segment (under ``_lock``), once
        their subscribers acknowledged what was published (a publisher destroyed right after its
        closing message took the message with it), or BODY_LINGER_S after they finished."""
        now = time.monotonic()
        for body in [b for b in self._leaving if not self._open.get(b)]:
            done = self._finished.setdefault(body, now)
            if not self._bodies[body].wait_for_all_acked(Duration()) and now - done < BODY_LINGER_S:
                continue  # the next publish or bodies list looks again
            self.node.destroy_publisher(self._bodies.pop(body))
            self._open.pop(body, None)
            self._finished.pop(body, None)
            self._leaving.discard(body)
