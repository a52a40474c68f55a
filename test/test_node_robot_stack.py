"""rhas_node next to the packages a robot already runs, over real DDS: persons from a
vision_msgs/Detection2DArray detector and from ROS4HRI bodies, the tracks out as vision_msgs and each
body's segments on its ROS4HRI topic, /diagnostics as monitoring tools read them (from
construction, the camera watchdog, under use_sim_time before /clock), and QoS overrides."""

from __future__ import annotations

import math
import time

import pytest
from contract import contract_violations
from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D
from node_process import rhas_node
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rhas_client import FRAME_GAP, segment_dict
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from rhas_msgs.msg import ActionSegment, ActionSegmentArray
from rhas_ros import qos
from rhas_ros.conversions import ns_to_stamp, stamp_to_ns

pytestmark = pytest.mark.dds
WIDTH, HEIGHT = 320, 240  # the synthetic clip's frames
DETECTOR = "detector/detections"  # where the upstream detector publishes (persons_topic)


def detection(box, cls="person", score=0.9, ident=""):
    d = Detection2D(id=ident)
    x, y, w, h = (float(v) for v in box)  # float64 fields: an int would be sent as its bits
    d.bbox.center.position.x, d.bbox.center.position.y, d.bbox.size_x, d.bbox.size_y = x + w / 2, y + h / 2, w, h
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = cls, score
    d.results = [hyp]
    return d


def clip_detections(c, k: int, tracked: bool) -> Detection2DArray:
    """The clip's persons at frame k as a detector node publishes them (ids as strings when tracked),
    plus a chair (another class)."""
    msg = Detection2DArray(header=Header(stamp=ns_to_stamp(c.stamp(k)), frame_id="head_camera"))
    for pid, p in enumerate(c.persons, 1):
        if p["boxes"][k % len(c.frames)]:
            msg.detections.append(detection(p["boxes"][k % len(c.frames)], ident=f"yolo_{pid}" if tracked else ""))
    msg.detections.append(detection((5, 5, 30, 30), cls="chair"))
    return msg


@pytest.mark.parametrize("tracked", [True, pytest.param(False, marks=pytest.mark.slow)])  # untracked: opt-in
def test_a_detection2d_detector_drives_segments_and_the_tracks_come_back_as_vision_msgs(
    node_assets, ros_env, dds_client, tracked
):
    with rhas_node(
        node_assets, ros_env, external_type="detection2d", persons_topic=DETECTOR, segment_all_persons=True
    ) as node:
        c = dds_client()
        det_pub = c.node.create_publisher(Detection2DArray, DETECTOR, qos.reliable())
        out: list[Detection2DArray] = []
        c.node.create_subscription(Detection2DArray, "detections", out.append, 100)
        c.wait_for_node()
        for k in range(24):
            det_pub.publish(clip_detections(c, k, tracked))
            c.image_pub.publish(c.image(c.frames[k], c.stamp(k)))
            c.spin_for(FRAME_GAP)
        c.wait_processed(c.stamp(23))
        assert {m["person_id"] for m in c.segments()} == {1, 2, 3}, node.log()[-2000:]
        last = c.tracks[-1]
        keys = sorted(p.external_id for p in last.persons)
        assert keys == (["yolo_1", "yolo_2", "yolo_3"] if tracked else ["", "", ""])
        assert out and out[-1].header.stamp == last.header.stamp and out[-1].header.frame_id == "head_camera"
        ours = {d.id: d for d in out[-1].detections}
        assert set(ours) == {str(p.person_id) for p in last.persons}
        for p in last.persons:
            d = ours[str(p.person_id)]
            assert d.results[0].hypothesis.class_id == "person"
            assert math.isclose(d.bbox.size_x, p.roi.width) and math.isclose(
                d.bbox.center.position.x, p.roi.x_offset + p.roi.width / 2
            )
        assert int(c.diag(fresh=True)["detections_not_person"]) >= 20, "the chair is not a person"


ODD_IDS = ["1x", "a-b", "", "ünï"]  # REP-155 ids that make no ROS topic name


def open_on(msgs) -> set[int]:
    """Segments whose latest status on this stream is not FINAL."""
    status = {s.segment_id: s.status for m in msgs for s in m.segments}
    return {sid for sid, st in status.items() if st != ActionSegment.STATUS_FINAL}


def test_ros4hri_bodies_drive_segments_published_under_each_body(node_assets, ros_env, dds_client):
    """Each ROS4HRI body (ids on /humans/bodies/tracked, a normalised roi on each body's topic) is a
    person; its segments are published on /action_segments and on its own actions topic, which keeps
    the segment contract when the body leaves. Ids that make no topic name are skipped and counted."""
    params = {"external_type": "hri", "segment_all_persons": True}
    with rhas_node(node_assets, ros_env, **params) as node:
        c = dds_client()
        ids_pub = c.node.create_publisher(IdsList, "/humans/bodies/tracked", qos.reliable())
        roi_pubs = {f"body{p}": c.node.create_publisher(NormalizedRegionOfInterest2D, f"/humans/bodies/body{p}/roi",
                                                        qos.reliable()) for p in (1, 2, 3)}  # fmt: skip
        per_body: dict[str, list[ActionSegmentArray]] = {b: [] for b in roi_pubs}
        for b in roi_pubs:
            c.node.create_subscription(ActionSegmentArray, f"/humans/bodies/{b}/actions", per_body[b].append, 100)
        c.wait_for_node()
        # The bodies appear first: the node subscribes to each roi and advertises each actions topic
        # when it sees the ids, and a roi or a segment sent before those are matched would be lost
        # however fast the machine (ROS4HRI's per-body topics).
        ids_pub.publish(IdsList(header=Header(stamp=ns_to_stamp(c.stamp(0))), ids=list(roi_pubs)))
        matched = lambda: all(c.node.count_subscribers(f"/humans/bodies/{b}/roi") and  # noqa: E731
                              c.node.count_publishers(f"/humans/bodies/{b}/actions") for b in roi_pubs)  # fmt: skip
        assert c.spin_until(matched, 60), node.log()[-2000:]
        for k in range(40):
            header = Header(stamp=ns_to_stamp(c.stamp(k)), frame_id="head_camera")
            # ids that make no topic name first (rclpy's rules: "1x" passes a plain alphanumeric check),
            # a body without a roi, a duplicate: skipped and counted, never a crash, the rest kept
            ids_pub.publish(IdsList(header=header, ids=[*ODD_IDS, *roi_pubs, "ghost", "no/topic name", "body1"]))
            for pid, p in enumerate(c.persons, 1):
                box = p["boxes"][k]
                if box:
                    x, y, w, h = box
                    roi_pubs[f"body{pid}"].publish(NormalizedRegionOfInterest2D(
                        header=header, xmin=x / WIDTH, ymin=y / HEIGHT, xmax=(x + w) / WIDTH, ymax=(y + h) / HEIGHT,
                        c=0.9))  # fmt: skip
            c.spin_for(FRAME_GAP)  # the rois first (another topic each), then the frame, in lockstep
            c.image_pub.publish(c.image(c.frames[k], c.stamp(k)))
            c.spin_until(c.processed(c.stamp(k)), 60)
        c.spin_for(0.5)
        body_of = {p.person_id: p.external_id for m in c.tracks for p in m.persons}
        assert sorted(body_of.values()) == ["body1", "body2", "body3"], (body_of, node.log()[-2000:])
        assert all(per_body.values()), "every body's actions topic carries its segments"
        # From the first message a body topic delivered on (a volatile subscriber hears a publisher
        # from when DDS matched them, on the node's side too), every message of that person is there.
        first = {b: min(stamp_to_ns(x.header.stamp) for x in got) for b, got in per_body.items()}
        for m in c.received:
            if stamp_to_ns(m.header.stamp) < first[body_of[m.person_id]]:
                continue
            mine = per_body[body_of[m.person_id]]
            assert any(x.header.stamp == m.header.stamp and x.segments == m.segments for x in mine), \
                f"person {m.person_id}'s message is on /humans/bodies/{body_of[m.person_id]}/actions"  # fmt: skip
        # "ghost" never sends a roi: counted once it has been tracked for ROI_TIMEOUT_S (1 s of the
        # node's clock) without one. The stack keeps listing the bodies, and the others' rois keep
        # coming, until the node says so.
        header = Header(stamp=ns_to_stamp(c.stamp(39)), frame_id="head_camera")
        ids = IdsList(header=header, ids=[*ODD_IDS, *roi_pubs, "ghost"])
        roi = NormalizedRegionOfInterest2D(header=header, xmin=0.1, ymin=0.1, xmax=0.3, ymax=0.6, c=0.9)
        deadline = time.monotonic() + 60  # only stops a hung test
        while c.diag().get("bodies_without_roi") != "1" and time.monotonic() < deadline:
            ids_pub.publish(ids)
            for pub in roi_pubs.values():
                pub.publish(roi)
            c.spin_for(0.2)
        diag = c.diag(fresh=True)
        assert diag["bodies_without_roi"] == "1" and int(diag["persons_rejected"]) >= 1, diag
        assert diag["worker_errors"] == diag["callback_errors"] == "0" and node.alive
        # Every body leaves: each body's actions topic gets the FINALs of its open segments (once
        # each), as action_segments does; the node's frames go on without persons.
        k, stamp, deadline = 0, c.stamp(39), time.monotonic() + 120  # the deadline only stops a hung test
        while c.open_segments() and time.monotonic() < deadline:  # 2 Hz: the tracks end after 8 s of camera time
            stamp, k = stamp + 500_000_000, k + 1
            ids_pub.publish(IdsList(header=Header(stamp=ns_to_stamp(stamp)), ids=[]))
            c.send_frame(40 + k, stamp_ns=stamp)
            c.spin_until(c.processed(stamp), 60)
        c.spin_until(lambda: all(not open_on(per_body[b]) for b in per_body), 10)  # the last messages
        for body, got in per_body.items():
            msgs = [segment_dict(m) for m in got]
            assert contract_violations(msgs) == [], (body, contract_violations(msgs)[:3])
            assert not open_on(got), f"{body}: segments left ONGOING on its actions topic ({k} frames)"


def test_bad_upstream_boxes_are_dropped_and_counted(node_assets, ros_env, dds_client):
    """NaN, negative, empty and out-of-image boxes, unknown classes, 10,000 detections, duplicate ids:
    dropped and counted, never a crash; then ordinary detections are served."""
    with rhas_node(
        node_assets, ros_env, external_type="detection2d", persons_topic=DETECTOR, segment_all_persons=True
    ) as node:
        c = dds_client()
        det_pub = c.node.create_publisher(Detection2DArray, DETECTOR, qos.reliable())
        c.wait_for_node()
        bad = [(math.nan, 10, 20, 40), (10, 10, -20, 40), (10, 10, 0, 40), (5000, 5000, 20, 40), (-900, 10, 20, 40)]
        for k in range(4):
            msg = Detection2DArray(header=Header(stamp=ns_to_stamp(c.stamp(k))))
            msg.detections = [detection(b, ident="x") for b in bad] + [detection((50, 50, 20, 40), cls="dog")]
            msg.detections += [detection((60, 60, 30, 60), ident="dup"), detection((160, 60, 30, 60), ident="dup")]
            det_pub.publish(msg)
            c.image_pub.publish(c.image(c.frames[k], c.stamp(k)))
            c.spin_for(0.2)
        flood = Detection2DArray(header=Header(stamp=ns_to_stamp(c.stamp(4))))
        flood.detections = [detection((j % 300, (j // 300) % 200, 20, 40), ident=str(j)) for j in range(10_000)]
        det_pub.publish(flood)
        c.spin_for(1.5)  # 10,000 detections take a while to cross; the image follows them
        c.image_pub.publish(c.image(c.frames[4], c.stamp(4)))
        c.wait_processed(c.stamp(4))
        for k in range(5, 40):
            det_pub.publish(clip_detections(c, k, tracked=True))
            c.image_pub.publish(c.image(c.frames[k], c.stamp(k)))
            c.spin_for(FRAME_GAP)
        c.wait_processed(c.stamp(39))
        diag = c.diag(fresh=True)
        assert node.alive and diag["worker_errors"] == "0" and diag["callback_errors"] == "0", node.log()[-2000:]
        assert int(diag["persons_rejected"]) == 4 * len(bad)
        assert int(diag["boxes_dropped"]) >= 10_000 - 64, "the flood capped at max_boxes"
        assert int(diag["detections_not_person"]) >= 4
        assert {m["person_id"] for m in c.segments() if m["stamp"] > c.stamp(10)}, "ordinary frames still served"


def test_diagnostics_follow_the_lifecycle_and_the_camera(node_assets, ros_env, dds_client):
    """unconfigured (WARN) -> active and fed (OK) -> images stop (ERROR after image_timeout_s) ->
    images again (OK again): what /diagnostics shows, read as a monitoring tool reads it. Frames
    keep coming until the status they should cause arrives (a camera does not stop either), so the
    verdict does not depend on how soon a loaded machine publishes it; deadlines only stop a hung test."""
    with rhas_node(node_assets, ros_env, autostart=False, image_timeout_s=2.0, diagnostics_window_s=2.0):
        c = dds_client()
        assert c.spin_until(lambda: c.diag().get("message") == "unconfigured: not processing", 60)
        assert c.diag()["level"] == 1
        assert c.state(attempts=5) == "unconfigured" and not c.transition("activate", attempts=5)
        assert c.transition("configure") and c.transition("activate")
        c.wait_for_node()
        c.send_text(c.texts[0])
        n = len(c.diag_levels())
        k = c.play_until(lambda: c.serving_since(n), first=0)
        assert c.serving_since(n), c.diag()
        assert c.spin_until(lambda: c.diag()["level"] == 2, 60), "images stopped: ERROR"
        assert c.diag()["message"].startswith("no image for")
        images_in = c.diag(task="images in")
        assert images_in["level"] == 2 and images_in["message"] == "No events recorded."
        n = len(c.diag_levels())
        c.play_until(lambda: c.serving_since(n), first=k)
        assert c.serving_since(n), c.diag()


def test_diagnostics_under_sim_time_before_clock_and_qos_overrides(node_assets, ros_env, dds_client):
    """use_sim_time with no /clock yet: /diagnostics still arrives (a node-clock timer would wait);
    and qos_overrides./image.subscription.reliability best_effort takes a best-effort camera that
    image_qos reliable would refuse."""
    params = {
        "use_sim_time": True,
        "image_qos": "reliable",
        "qos_overrides./image.subscription.reliability": "best_effort",
    }
    with rhas_node(node_assets, ros_env, **params) as node:
        c = dds_client(reliable_images=False)
        assert c.spin_until(lambda: len([d for d in c.diagnostics if d.status]) >= 2, 60), "diagnostics before /clock"
        assert all(stamp_to_ns(d.header.stamp) == 0 for d in c.diagnostics), "sim time has not started"
        c.wait_for_node()
        c.send_text(c.texts[0])
        c.play(0, 20)
        assert c.track_ids() and c.received, f"the best-effort images arrived: {node.log()[-2000:]}"
        assert int(c.diag(fresh=True).get("image_qos_incompatible", "0")) == 0


def test_what_the_node_keeps_and_writes(node_assets, ros_env, dds_client, tmp_path):
    """The README's privacy statements: features of at most W frames per person plus the frame ring,
    forgotten at deactivate; no frame is kept; no file is written but ROS's own log."""
    home, logs = tmp_path / "home", tmp_path / "ros_log"
    home.mkdir()
    env = dict(ros_env, HOME=str(home), ROS_LOG_DIR=str(logs))
    with rhas_node(node_assets, env, segment_all_persons=True, queue_policy="latest") as node:  # as a robot runs
        c = dds_client()
        c.wait_for_node()
        c.play(0, 40)
        diag = c.diag(fresh=True)
        assert 0 < int(diag["buffered_frames"]) <= 16 * (1 + 3), "W=16 frames: the frame ring and 3 persons'"
        assert int(diag["queue_length"]) <= 2
        assert c.transition("deactivate", attempts=1)
        assert c.spin_until(lambda: c.diag().get("buffered_frames") == "0", 60), "deactivate forgets the features"
        assert c.diag()["state"] == "inactive"
        assert node.stop() == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert all(w.startswith("ros_log/") for w in written), written


def test_a_qos_override_changes_its_own_topic_only(node_assets, ros_env, dds_client):
    """qos_overrides for /action_segments (best effort) and /action_labels (volatile): those two
    endpoints change, and every other publisher and subscription of the node keeps its own profile,
    read back from the DDS graph as `ros2 topic info -v` shows it. (rclpy applies an override by
    changing the profile object it is handed; one shared object once made every output best
    effort and the latched text subscription volatile.)"""
    params = {
        "qos_overrides./action_segments.publisher.reliability": "best_effort",
        "qos_overrides./action_labels.publisher.durability": "volatile",
    }
    reliable, best_effort = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
    latched, volatile = DurabilityPolicy.TRANSIENT_LOCAL, DurabilityPolicy.VOLATILE
    with rhas_node(node_assets, ros_env, **params) as node:
        c = dds_client()  # its latched label subscription cannot hear a volatile publisher: no wait_for_node
        assert c.spin_until(lambda: c.image_pub.get_subscription_count() > 0, 60), "the node is active"

        def endpoints(kind: str, topic: str) -> list[tuple]:
            infos = getattr(c.node, f"get_{kind}_info_by_topic")(topic)
            return sorted((i.qos_profile.reliability, i.qos_profile.durability) for i in infos
                          if i.node_name == "rhas_node")  # fmt: skip

        want = {
            ("publishers", "/action_segments"): [(best_effort, volatile)],
            ("publishers", "/action_labels"): [(reliable, volatile)],
            ("publishers", "/tracked_persons"): [(reliable, volatile)],
            ("publishers", "/detections"): [(reliable, volatile)],
            ("publishers", "/rhas_node/debug_image"): [(reliable, volatile)],
            ("subscriptions", "/persons"): [(reliable, volatile)],
            ("subscriptions", "/image"): [(reliable, volatile)],
            ("subscriptions", "/referring_text"): sorted([(reliable, latched), (reliable, volatile)]),
        }
        got = lambda: {key: endpoints(*key) for key in want}  # noqa: E731
        c.spin_until(lambda: got() == want, 60)  # the graph is discovered, then it holds
        assert got() == want, node.log()[-2000:]
