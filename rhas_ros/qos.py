"""Named QoS profiles: every publisher and subscription of the package takes its profile from here,
and lets the user override it (``overridable``)."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions

# The policies a user may override with the standard parameters
# qos_overrides./<topic>.<publisher|subscription>[_<id>].<policy> (read at creation).
OVERRIDABLE = (QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY, QoSPolicyKind.DURABILITY)


def overridable(entity_id: str | None = None) -> QoSOverridingOptions:
    """``qos_overriding_options`` for a publisher or subscription; ``entity_id`` tells apart two on one
    topic (the text topic's latched and volatile subscriptions)."""
    return QoSOverridingOptions(OVERRIDABLE, entity_id=entity_id)


# Latched: the last message is kept for late joiners (label set, referring text).
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Referring texts from volatile publishers (`ros2 topic pub`'s default), alongside LATCHED.
TEXT_VOLATILE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
# Outputs and person boxes: reliable, a short queue.
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Consumers of the node's outputs (rhas_ros.client, rhas_behavior): reliable, room for a burst of
# closing messages (deactivate closes every person's segments at once).
CONSUMER = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
# Debug images: reliable, keep only the newest two.
DEBUG_IMAGE = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
SENSOR_DATA = qos_profile_sensor_data


def image_qos(name: str, depth: int) -> QoSProfile:
    """The camera subscription's profile from the ``image_qos``/``image_qos_depth`` parameters."""
    if name == "sensor_data":
        return SENSOR_DATA
    if name == "reliable":
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)
    raise ValueError(f"image_qos {name!r}: allowed 'sensor_data', 'reliable'")
