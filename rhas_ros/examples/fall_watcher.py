"""A behaviour node in 20 lines: say something when the referred person falls."""

import contextlib

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from std_msgs.msg import String

from rhas_ros.client import ActionTimeline


def main():
    with rclpy.init():
        node = Node("fall_watcher")
        speech = node.create_publisher(String, "speech", 10)
        timeline = ActionTimeline()
        timeline.attach(node)  # action_segments, action_labels, tracked_persons

        def fell(segment):
            node.get_logger().info(f"person {segment.person_id} is {segment.label} (p={segment.confidence:.2f})")
            speech.publish(String(data="Are you all right?"))

        timeline.on_action_started("falling", fell, person="target", min_confidence=0.6, min_duration=0.5)
        timeline.on_action_ended("falling", lambda s: node.get_logger().info(f"up again after {s.duration_s:.1f} s"))
        with contextlib.suppress(KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C
            rclpy.spin(node)


if __name__ == "__main__":
    main()
