"""ROS 2 node for referring human action segmentation, and its ROS-free core."""
