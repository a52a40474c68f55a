"""Upstream person boxes (rhas_ros.core.persons, rhas_ros.conversions): one form for rhas_msgs,
vision_msgs and ROS4HRI, validated the same way; upstream ids kept stable."""

from __future__ import annotations

import math

import numpy as np
from hri_msgs.msg import NormalizedRegionOfInterest2D
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from rhas_ros import conversions as conv
from rhas_ros.core.persons import IDS_KEPT, ExternalIds, PersonsInput
from rhas_ros.core.tracking import Detections


def det(cx, cy, w, h, classes, ident=""):
    d = Detection2D(id=ident)
    d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y = cx, cy, w, h
    for cls, score in classes:
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id, hyp.hypothesis.score = cls, score
        d.results.append(hyp)
    return d


def test_detection2d_persons_by_class_with_their_best_person_score_and_ids():
    msg = Detection2DArray(detections=[
        det(50.0, 100.0, 20.0, 40.0, [("person", 0.8)], "a"),
        det(150.0, 100.0, 20.0, 40.0, [("dog", 0.9), ("0", 0.6), ("person", 0.7)]),
        det(10.0, 10.0, 5.0, 5.0, [("chair", 0.99)], "c"),
    ])  # fmt: skip
    persons, others = conv.persons_from_detections(msg, ("person", "0"))
    np.testing.assert_allclose(persons.boxes, [[40, 80, 20, 40], [140, 80, 20, 40]])
    np.testing.assert_allclose(persons.scores, [0.8, 0.7])
    assert persons.keys == ["a", ""] and others == 1 and not persons.normalized


def test_hri_roi_is_normalised_and_goes_to_pixels():
    roi = NormalizedRegionOfInterest2D(xmin=0.25, ymin=0.5, xmax=0.5, ymax=1.0, c=0.0)
    p = conv.person_from_hri_roi("b12", roi)
    boxes, scores, keys, rejected = p.in_pixels(320, 240)
    np.testing.assert_allclose(boxes, [[80, 120, 80, 120]])
    assert scores.tolist() == [1.0] and keys == ["b12"] and rejected == 0, "c = 0 (not given): full confidence"


def test_bad_boxes_are_dropped_and_counted_the_rest_clipped_to_the_image():
    boxes = [[math.nan, 0, 10, 10], [0, 0, -5, 10], [0, 0, 0, 10], [400, 0, 10, 10], [-20, -20, 10, 10],
             [300, 200, 50, 100], [10, 10, 20, 40]]  # fmt: skip
    p = PersonsInput(np.array(boxes, float), np.ones(7), [str(i) for i in range(7)])
    out, _, keys, rejected = p.in_pixels(320, 240)
    assert rejected == 5 and keys == ["5", "6"]
    np.testing.assert_allclose(out, [[300, 200, 20, 40], [10, 10, 20, 40]], err_msg="the part in view")
    norm = PersonsInput(np.array([[0.5, 0.5, 0.6, 0.2], [-0.1, 0, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2]]), np.ones(3),
                        ["x", "y", "z"], normalized=True)  # fmt: skip
    assert norm.in_pixels(100, 100)[2:] == (["z"], 2), "outside [0, 1]: dropped"


def test_degenerate_boxes_never_reach_the_tracker():
    """A 1e-300-pixel side (an int written into a float64 field arrives so) once made the Kalman
    covariance singular on every later frame; a 1e300 one overflows it."""
    dets, dropped = Detections.sanitized([[10, 10, 1e-300, 1e-300], [10, 10, 1e300, 40], [10, 10, 20, 40]],
                                         [0.9, 0.9, 0.9], ["a", "b", "c"], max_boxes=64)  # fmt: skip
    assert dropped == 2 and dets.external_ids == ["c"]


def test_upstream_ids_map_to_stable_integers_and_back_bounded():
    ids = ExternalIds()
    first = ids.ints(["yolo_7", "", "body_a"])
    assert first[1] is None and ids.ints(["body_a", "yolo_7"]) == [first[2], first[0]]
    assert ids.key(first[0]) == "yolo_7" and ids.key(None) == "" and ids.key(999_999) == ""
    ids.ints([f"k{i}" for i in range(IDS_KEPT + 5)])
    assert len(ids._ids) == IDS_KEPT and ids.key(first[0]) == "", "the least recently seen are forgotten"
