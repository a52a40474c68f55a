"""rhas_node over real DDS, each test with a node of its own (the parameters it needs at
configure: everyone mode, compressed images, a short track_lost_seconds, a failing checkpoint);
the tests that share one node are test_node_dds.py. The client runs in the test's process
(test/helpers/rhas_client.py)."""

from __future__ import annotations

import itertools
import signal

import cv2
import pytest
from contract import contract_violations, open_after
from node_process import rhas_node
from rhas_client import FRAME_GAP
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from rhas_ros.conversions import ns_to_stamp, stamp_to_ns

pytestmark = pytest.mark.dds


def test_everyone_mode_three_stable_ids(node_assets, ros_env, dds_client):
    with rhas_node(node_assets, ros_env, segment_all_persons=True) as node:
        c = dds_client()
        c.wait_for_node()
        c.send_text(c.texts[0])  # ignored in everyone mode
        c.play(0, 40)
        ids = {m["person_id"] for m in c.segments()}
        assert ids == {1, 2, 3}, (ids, node.log()[-2000:])
        assert c.track_ids() == {1, 2, 3}
        assert all(m["query"] == "" and m["conf"] == 0 for m in c.segments())


def test_segment_contract_holds_through_every_way_a_segment_ends(node_assets, ros_env, dds_client):
    """Query changed, target lost (switch), query cleared, deactivate, shutdown: every segment ever
    published ONGOING is published FINAL exactly once, revisions only grow, FINAL never changes,
    and every header stamp is the newest frame's."""
    # The target is hidden for 1.6 s: longer than the tracker keeps a lost person here.
    with rhas_node(node_assets, ros_env, track_lost_seconds=0.5) as node:
        c = dds_client()
        c.wait_for_node()
        marks = {}
        c.send_text(c.texts[0])
        c.play(0, 24)
        c.send_text(c.texts[1])  # a changed query
        c.wait_all_final()
        marks["query_changed"] = len(c.received)
        c.play(24, 16)
        target = next(t for t in reversed(c.targets()) if t >= 0)
        c.play(40, 16, hidden={target})  # the target leaves: another person becomes the target
        c.send_text("")  # cleared
        c.wait_all_final()
        marks["query_cleared"] = len(c.received)
        c.play(56, 8)
        c.send_text(c.texts[0])
        c.play(64, 20)
        assert c.transition("deactivate")
        c.wait_all_final()
        marks["deactivated"] = len(c.received)
        assert c.transition("activate")
        c.spin_for(0.5)
        c.play(84, 20)
        code = node.stop(signal.SIGINT)
        c.spin_for(1.0)  # the closing messages
        marks["shutdown"] = len(c.received)
        assert code == 0, node.log()[-2000:]
    msgs = c.segments()
    assert msgs and contract_violations(msgs, [c.stamp(i) for i in range(104)]) == []
    for event in ("query_changed", "query_cleared", "deactivated", "shutdown"):
        assert not open_after(msgs, marks[event]), f"segments left ONGOING after {event}"
    assert marks["shutdown"] > marks["deactivated"] > marks["query_cleared"], "every phase published something"
    switched = [t for t in c.targets() if t >= 0]
    assert sum(a != b for a, b in itertools.pairwise(switched)) >= 2, f"the target should have switched: {switched}"


def test_compressed_images_full_frame_detector_and_a_corrupt_jpeg(node_assets, ros_env, dds_client):
    """CompressedImage input with the full_frame detector in everyone mode: the whole image is the
    one person (id 1); a corrupt JPEG every fifth frame is skipped and counted."""
    params = {"use_compressed": True, "detector": "full_frame", "segment_all_persons": True}
    with rhas_node(node_assets, ros_env, **params) as node:
        c = dds_client()
        c.wait_for_node()
        for i in range(40):
            _, jpg = cv2.imencode(".jpg", cv2.cvtColor(c.frames[i], cv2.COLOR_RGB2BGR))
            data = jpg.tobytes()
            if i % 5 == 2:
                data = data[: len(data) // 3] + b"\x00garbage"  # corrupt JPEG
            header = Header(stamp=ns_to_stamp(c.stamp(i)), frame_id="head_camera")
            c.compressed_pub.publish(CompressedImage(header=header, format="jpeg", data=data))
            c.spin_for(FRAME_GAP)
        c.wait_processed(c.stamp(39))
        assert node.alive and "corrupt or unsupported compressed image" in node.log()
        assert {m["person_id"] for m in c.segments()} == {1} and c.track_ids() == {1}
        assert int(c.diag(fresh=True)["decode_errors"]) == 8


def test_lifecycle_transitions(node_assets, ros_env, dds_client):
    """configure with a missing checkpoint fails cleanly; a later configure with a good one succeeds."""
    with rhas_node(node_assets, ros_env, autostart=False, checkpoint=str(node_assets / "missing.pt")) as node:
        c = dds_client()
        assert c.state(attempts=5) == "unconfigured"  # warm-up: both directions of the services matched ...
        assert not c.transition("activate", attempts=5), "... (activating an unconfigured node is refused)"
        assert not c.transition("configure") and c.state() == "unconfigured"
        assert node.wait_for_log("missing.pt does not exist", 60), node.log()  # the reply may beat the log line
        assert c.set_parameters(checkpoint=str(node_assets / "model.pt"), attempts=3)[0].successful
        steps = [(name, c.transition(name), c.state()) for name in ("configure", "activate", "deactivate", "cleanup")]
        assert steps == [
            ("configure", True, "inactive"),
            ("activate", True, "active"),
            ("deactivate", True, "inactive"),
            ("cleanup", True, "unconfigured"),
        ]
        assert node.alive


def test_runtime_parameters_are_checked_as_configure_checks_them(node_assets, ros_env, dds_client):
    """Over DDS, as `ros2 param set` does it: values that cannot run are refused with the reason and
    change nothing, the node keeps segmenting; sample_fps 0.0 means the checkpoint's rate (5 fps)."""
    with rhas_node(node_assets, ros_env) as node:
        c = dds_client()
        c.wait_for_node()
        c.send_text(c.texts[0])
        c.play(0, 12)
        refused = {
            "ddim_steps": (1000, "ddim_steps=1000 must be in 1..100"),  # the tiny checkpoint's schedule
            "track_low_score": (0.9, "track_low_score=0.9 is above track_high_score=0.5"),
            "window": (64, "window takes effect at configure"),
            "eta": (2.0, ""),  # outside its declared range: rclpy refuses it
        }
        for name, (value, reason) in refused.items():
            (result,) = c.set_parameters(**{name: value})
            assert not result.successful and reason in result.reason, (name, result.reason)
        c.play(12, 20)
        errors = c.diag(fresh=True)
        assert errors["worker_errors"] == errors["callback_errors"] == "0", errors
        published = len(c.received)
        assert published > 0
        (result,) = c.set_parameters(sample_fps=0.0)
        assert result.successful, result.reason
        c.play(32, 20)  # stamps 100 ms apart: at 5 fps every other frame is kept
        assert len(c.received) > published, "still segmenting"
        kept = [stamp_to_ns(m.header.stamp) for m in c.tracks if stamp_to_ns(m.header.stamp) >= c.stamp(32)]
        assert len(kept) <= 11 and all(b - a >= 200_000_000 for a, b in itertools.pairwise(kept)), kept
        assert c.diag(fresh=True)["worker_errors"] == "0" and node.alive
