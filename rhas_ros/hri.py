"""ROS4HRI (REP-155) names for rhas_node: the per-body topics under the configured bodies prefix.

REP-155 puts a body's topics under ``/humans/bodies/<body_id>/`` (roi, cropped, skeleton2d,
joint_states, posture, gesture) and lists the tracked ids on ``/humans/bodies/tracked``. Here the
prefix is what ``hri_bodies_topic`` says (its last name part, ``tracked``, removed), so a
namespace or a remapped prefix applies to the per-body topics as to the list. ``actions`` is this
package's extension of REP-155: each body's rhas_msgs/ActionSegmentArray, the same messages as
``action_segments`` (``person_id`` the node's integer, ``external_id`` in the tracks the body id).

A body id is used only when ``<prefix>/<id>/<leaf>`` is a valid ROS topic name by rclpy's own rules
(a name part may not start with a digit, only letters, digits and underscores): others are skipped
and counted, never raised from a callback.
"""

from __future__ import annotations

from rclpy.expand_topic_name import expand_topic_name
from rclpy.validate_full_topic_name import validate_full_topic_name

from .core.persons import HRI_ID

HOW_TO_GET = (
    "external_type hri needs the ROS4HRI messages (hri_msgs), which have no ROS 2 Kilted release: "
    "build them from source (https://github.com/ros4hri/hri_msgs) into your workspace, or with "
    "scripts/setup_env.sh from ../shared/ros-extra"
)


def hri_msgs_missing() -> str | None:
    """None when hri_msgs imports, else what to do about it (configure's reason)."""
    try:
        import hri_msgs.msg  # noqa: F401
    except ImportError:
        return HOW_TO_GET
    return None


def bodies_prefix(bodies_topic: str) -> str:
    """``/humans/bodies/tracked`` -> ``/humans/bodies`` (a relative topic stays relative)."""
    head, _, _ = bodies_topic.rstrip("/").rpartition("/")
    return head or ("/" if bodies_topic.startswith("/") else "")


def body_topic(node, prefix: str, body: str, leaf: str) -> str | None:
    """The topic of one body's ``leaf`` (roi, actions), or None when the id makes no valid topic name."""
    if not HRI_ID.match(body):
        return None
    name = f"{prefix.rstrip('/')}/{body}/{leaf}" if prefix.strip("/") else f"{body}/{leaf}"
    try:
        validate_full_topic_name(expand_topic_name(name, node.get_name(), node.get_namespace()))
    except Exception:  # rclpy's InvalidTopicNameException and its kin
        return None
    return name
