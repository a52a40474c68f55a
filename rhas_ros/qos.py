"""Named QoS profiles: every publisher and subscription of the package takes its profile from here,
and lets the user override it (``overridable``).

Each profile is a function that returns a new ``QoSProfile``: rclpy applies ``qos_overrides.*``
by changing the profile object it is handed, so an object shared by two topics would carry one
topic's override to the other (test_node_robot_stack reads every endpoint's QoS back after one
override). Never hand rclpy a module-level profile, ``qos_profile_sensor_data`` included.
"""

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


def latched() -> QoSProfile:
    """The last message is kept for late joiners (label set, referring text)."""
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def text_volatile() -> QoSProfile:
    """Referring texts from volatile publishers (`ros2 topic pub`'s default), alongside ``latched``."""
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def reliable(depth: int = 10) -> QoSProfile:
    """Outputs and person boxes: reliable, a short queue."""
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def consumer() -> QoSProfile:
    """Consumers of the node's outputs (rhas_ros.client, rhas_behavior): reliable, room for a burst of
    closing messages (deactivate closes every person's segments at once)."""
    return reliable(50)


def debug_image() -> QoSProfile:
    """Debug images: reliable, keep only the newest two."""
    return reliable(2)


def sensor_data() -> QoSProfile:
    """Best effort, a short queue: what camera drivers offer (a copy of rclpy's profile)."""
    p = qos_profile_sensor_data
    return QoSProfile(history=p.history, depth=p.depth, reliability=p.reliability, durability=p.durability)


def image_qos(name: str, depth: int) -> QoSProfile:
    """The camera subscription's profile from the ``image_qos``/``image_qos_depth`` parameters."""
    if name == "sensor_data":
        return sensor_data()
    if name == "reliable":
        return reliable(depth)
    raise ValueError(f"image_qos {name!r}: allowed 'sensor_data', 'reliable'")
