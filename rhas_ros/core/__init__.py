"""The node's ROS-free core: everything rhas_node does between a decoded frame and a segment.

    image_codec.py  ROS image encodings -> RGB arrays (numpy / OpenCV)
    detectors.py    person detectors (hog, full_frame, grounding_dino, external boxes)
    tracker.py      track ids across frames
    grounding.py    referring text -> one track, with hysteresis
    pipeline.py     detect -> track -> ground -> encode -> buffer -> HopaDIFF -> stitch
    stitching.py    per-window predictions -> segments with stable ids, revisions and status
    debug_image.py  the annotated frame for ~/debug_image

Nothing here imports rclpy or ROS messages (a test checks it), so it runs and tests without ROS.
"""
