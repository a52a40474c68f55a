"""Publish or receive one fully populated rhas_msgs/ActionSegmentArray over DDS.

  python segment_array_pubsub.py pub         publish the sample message at 10 Hz until killed
  python segment_array_pubsub.py sub [SEC]   print the first message received as JSON, exit 0;
                                             exit 3 if nothing arrives within SEC seconds
Used by test_msgs_dds.py (each mode runs in its own OS process).
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from builtin_interfaces.msg import Time
from msg_dict import to_dict
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from rhas_msgs.msg import ActionSegment, ActionSegmentArray
from rhas_ros import qos

TOPIC = "action_segments"


def sample_message() -> ActionSegmentArray:
    """A message with every field set to a distinctive, non-default value."""
    segments = [
        ActionSegment(
            segment_id=1000 + i,
            revision=i,
            status=ActionSegment.STATUS_FINAL if i < 2 else ActionSegment.STATUS_ONGOING,
            start=Time(sec=100 + 2 * i, nanosec=250_000_000),
            end=Time(sec=101 + 2 * i, nanosec=750_000_000),
            class_id=[3, 117, 42][i],
            label=["bending", "walking", "pointing at — ünïcode"][i],
            confidence=[0.25, 0.5, 0.875][i],
        )
        for i in range(3)
    ]
    return ActionSegmentArray(
        header=Header(stamp=Time(sec=105, nanosec=123_456_789), frame_id="head_camera_optical"),
        person_id=7,
        query="the elderly man in the red shirt",
        grounding_confidence=0.625,
        roi=RegionOfInterest(x_offset=12, y_offset=34, height=200, width=80, do_rectify=True),
        window_start=Time(sec=99, nanosec=1),
        window_end=Time(sec=105, nanosec=123_456_789),
        segments=segments,
    )


def main() -> int:
    mode = sys.argv[1]
    reliable = qos.reliable()  # what rhas_node publishes with
    rclpy.init()
    node = rclpy.create_node(f"segment_array_{mode}")
    try:
        if mode == "pub":
            pub = node.create_publisher(ActionSegmentArray, TOPIC, reliable)
            msg = sample_message()
            while rclpy.ok():
                pub.publish(msg)
                time.sleep(0.1)
            return 0
        timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
        received: list[ActionSegmentArray] = []
        node.create_subscription(ActionSegmentArray, TOPIC, received.append, reliable)
        deadline = time.monotonic() + timeout
        while not received and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        if not received:
            return 3
        print(json.dumps(to_dict(received[0])))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
