"""The node's ROS-free core: everything rhas_node does between a decoded frame and a segment.

    detectors.py    person detectors (hog, full_frame, grounding_dino, external boxes)
    tracker.py      track ids across frames
    grounding.py    referring text -> one track, with hysteresis
    settings.py     every rhas_node parameter, declared once (config/rhas.yaml is generated from it)
    pipeline.py     detect -> track -> encode -> ground, then hopadiff.streaming (buffers, windows,
                    HopaDIFF, stitching into segments: the code hopadiff-eval --streaming runs too)
    debug_image.py  the annotated frame for ~/debug_image

Nothing here imports rclpy or ROS messages (a test checks it), so it runs and tests without ROS.
"""
