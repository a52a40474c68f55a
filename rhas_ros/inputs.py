"""What rhas_node subscribes to, created at activate and destroyed at deactivate. Every
subscription's QoS can be overridden with the standard ``qos_overrides./<topic>.subscription[_<id>].
<policy>`` parameters (history, depth, reliability, durability; the two text subscriptions have
the ids ``latched`` and ``volatile``).

- the camera: ``image`` (sensor_msgs/Image) or ``image/compressed``;
- the referring text, twice: transient-local (a text latched before the node started) and volatile
  (what ``ros2 topic pub`` offers by default). Each is incompatible with the other kind of
  publisher, which is expected: the incompatible-QoS event of the pair is handled here instead of
  rclpy's warning, which said "No messages will be received" of texts the other subscription did
  receive. A best-effort text publisher matches neither, and that is warned about;
- with ``detector: external``, the persons from ``external_type``: ``tracked_persons``
  (rhas_msgs/TrackedPersonArray on ``persons_topic``), ``detection2d`` (vision_msgs/
  Detection2DArray on ``persons_topic``) or ``hri`` (ROS4HRI: the body ids on
  ``hri_bodies_topic`` and each tracked body's ``/humans/bodies/<id>/roi``).
"""

from __future__ import annotations

import copy
import time

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.subscription import Subscription
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2DArray

from rhas_msgs.msg import TrackedPersonArray

from . import conversions as conv
from . import qos
from .core.intake import shown
from .hri import bodies_prefix, body_topic

ROI_TIMEOUT_S = 1.0  # a tracked body without a roi for this long is counted (bodies_without_roi)


class Inputs:
    """``node`` provides the handlers: _on_image (raw and compressed), _on_text, _on_persons(stamp_ns,
    PersonsInput), _on_bodies(ids), _warn(message, key), _counts, _gauges."""

    def __init__(self, node, s):
        self.node, self.s = node, s
        self.subs: list[Subscription] = []
        self.bodies: dict[str, Subscription] = {}  # ROS4HRI body id -> its roi subscription
        self.roi_seen: dict[str, float] = {}  # body id -> monotonic time of its last roi
        image_qos = qos.image_qos(s.image_qos, s.image_qos_depth)
        on_image_qos = SubscriptionEventCallbacks(incompatible_qos=self._image_incompatible)
        if s.use_compressed:
            self._sub(CompressedImage, s.image_topic + "/compressed", node._on_image, image_qos, on_image_qos)
        else:
            self._sub(Image, s.image_topic, node._on_image, image_qos, on_image_qos)
        quiet = SubscriptionEventCallbacks(incompatible_qos=self._text_pair)
        self._sub(String, s.text_topic, node._on_text, qos.latched(), quiet, "latched")
        volatile = SubscriptionEventCallbacks(incompatible_qos=self._text_best_effort)
        self._sub(String, s.text_topic, node._on_text, qos.text_volatile(), volatile, "volatile")
        if s.detector == "external":
            if s.external_type == "tracked_persons":
                self._sub(TrackedPersonArray, s.persons_topic, self._on_persons, qos.reliable())
            elif s.external_type == "detection2d":
                self._sub(Detection2DArray, s.persons_topic, self._on_persons, qos.reliable())
            else:  # hri_msgs only where it is used (no Kilted release: configure checked it imports)
                from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D

                self._roi_type = NormalizedRegionOfInterest2D
                ids = self._sub(IdsList, s.hri_bodies_topic, self._on_ids, qos.reliable())
                self._prefix = bodies_prefix(s.hri_bodies_topic)
                self._roi_qos = copy.copy(ids.qos_profile)  # each body's roi: the list's QoS, overrides included

    @property
    def image_topic(self) -> str:
        return self.subs[0].topic_name

    @property
    def text_topic(self) -> str:
        return self.subs[1].topic_name

    def destroy(self) -> None:
        for sub in [*self.subs, *self.bodies.values()]:
            self.node.destroy_subscription(sub)
        self.subs, self.bodies, self.roi_seen = [], {}, {}
        self.node._on_bodies([])

    def _sub(self, msg_type, topic, callback, profile, events=None, entity_id=None) -> Subscription:
        sub = self.node.create_subscription(msg_type, topic, callback, profile, event_callbacks=events,
                                            qos_overriding_options=qos.overridable(entity_id))  # fmt: skip
        self.subs.append(sub)
        return sub

    # ------------------------------------------------------------------ QoS events
    def _image_incompatible(self, info) -> None:
        self.node._counts["image_qos_incompatible"] += 1
        self.node._warn(f"a publisher on {self.image_topic} offers a QoS this subscription cannot take "
                        f"({info.last_policy_kind.name.lower()}): its images will not arrive; image_qos is "
                        f"{self.s.image_qos!r}", key="image-qos")  # fmt: skip

    def _text_pair(self, info) -> None:
        """A volatile text publisher seen by the transient-local subscription: the volatile one hears it."""
        self.node.get_logger().debug(f"a volatile publisher on {self.text_topic}: heard by the volatile subscription")

    def _text_best_effort(self, info) -> None:
        self.node._warn(f"a publisher on {self.text_topic} offers a QoS no text subscription takes "
                        f"({info.last_policy_kind.name.lower()}): publish texts reliable", key="text-qos")  # fmt: skip

    # ------------------------------------------------------------------ persons
    def _on_persons(self, msg: TrackedPersonArray | Detection2DArray) -> None:
        persons = conv.persons_from_message(msg, self.s.person_classes, self.node._counts)
        self.node._on_persons(conv.stamp_to_ns(msg.header.stamp), persons)

    def _on_ids(self, msg) -> None:
        """The tracked bodies: a roi subscription each (at most max_boxes, ids fit for a topic name)."""
        with self.node._serial:  # not while a transition destroys the subscriptions
            self._track_ids(msg)

    def _track_ids(self, msg) -> None:
        try:
            ids = list(dict.fromkeys(msg.ids))  # duplicates once
            topics = {b: body_topic(self.node, self._prefix, b, "roi") for b in ids}
            bad = [b for b in ids if topics[b] is None]
            if bad:  # skipped and counted; the other bodies of the list are kept
                self.node._counts["persons_rejected"] += len(bad)
                self.node._warn(f"ROS4HRI body ids that make no topic name ignored: {shown(', '.join(bad))}",
                                key="hri-ids")  # fmt: skip
            wanted = [b for b in ids if topics[b] is not None][: self.s.max_boxes]
            for body in [b for b in self.bodies if b not in wanted]:
                self.node.destroy_subscription(self.bodies.pop(body))
                self.roi_seen.pop(body, None)
            now = time.monotonic()
            for body in wanted:
                if body not in self.bodies:
                    self.bodies[body] = self.node.create_subscription(
                        self._roi_type, topics[body], lambda m, b=body: self._on_roi(b, m), copy.copy(self._roi_qos)
                    )
                    self.roi_seen[body] = now
            self.node._gauges["bodies_without_roi"] = sum(now - self.roi_seen[b] > ROI_TIMEOUT_S for b in wanted)
            self.node._on_bodies(wanted)
        except Exception as e:
            self.node._callback_failed("ROS4HRI body ids", e)

    def _on_roi(self, body: str, msg) -> None:
        self.roi_seen[body] = time.monotonic()
        self.node._on_persons(conv.stamp_to_ns(msg.header.stamp), conv.person_from_hri_roi(body, msg), merge=True)
