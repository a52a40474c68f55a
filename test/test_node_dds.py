"""rhas_node over real DDS: the node runs in its own process on an isolated domain; each test
publishes to it from a client in the test's process (test/helpers/rhas_client.py) and checks what
the node publishes: segments, tracked persons, /diagnostics."""

from __future__ import annotations

import pytest
from contract import FINAL, open_after
from node_process import rhas_node
from rhas_client import FRAME_GAP, PERIOD_NS
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from rhas_msgs.msg import TrackedPerson, TrackedPersonArray
from rhas_ros.conversions import ns_to_stamp, stamp_to_ns

pytestmark = pytest.mark.dds


class SharedNode:
    """One node (referring mode, the test parameters) serving several tests in turn, on a domain of
    its own. Each test gets its own camera clock, so the clock never goes backwards between them."""

    def __init__(self, node, env):
        self.node, self.env, self.runs = node, env, 0

    def client(self, make):
        self.runs += 1
        c = make(env=self.env, t0=self.runs * 10**12)
        c.wait_for_node()
        c.log_mark = len(self.node.lines)
        return c

    def log(self, c) -> str:
        return self.node.log(c.log_mark)


@pytest.fixture(scope="module")
def shared_node(node_assets, second_ros_env):
    with rhas_node(node_assets, second_ros_env) as node:
        yield SharedNode(node, second_ros_env)


def test_referring_mode_publishes_consistent_segments(shared_node, dds_client):
    c = shared_node.client(dds_client)
    c.send_text(c.texts[0])
    c.play(0, 40)
    msgs = c.segments()
    assert msgs, f"no ActionSegmentArray received; node log: {shared_node.log(c)[-2000:]}"
    assert c.labels[:3] == ["walking", "running", "jumping"]
    assert [(m.width, m.height, m.encoding) for m in c.debug_images[:1]] == [(320, 240, "bgr8")], "debug image"
    targets = {t for t in c.targets() if t >= 0}
    assert len(targets) >= 1
    sent = {c.stamp(i) for i in range(40)}
    last_rev, finals = {}, {}
    for m in msgs:
        assert m["frame_id"] == "head_camera"
        assert m["stamp"] in sent and m["stamp"] == m["window"][1], "header stamp = newest frame of the window"
        assert m["window"][0] <= m["window"][1] and m["person_id"] in targets
        assert m["query"].startswith("the ") and 0 <= m["conf"] <= 1
        for s in m["segments"]:
            assert s["start"] <= s["end"] and s["start"] in sent and s["end"] in sent
            assert c.labels[s["class_id"]] == s["label"]
            assert s["rev"] >= last_rev.get(s["id"], 0), "revisions never go back"
            last_rev[s["id"]] = s["rev"]
            if s["id"] in finals:
                assert s == finals[s["id"]], "a FINAL segment never changes"
            if s["status"] == FINAL:
                finals[s["id"]] = s


def test_clearing_the_query_closes_segments_and_stops_output(shared_node, dds_client):
    c = shared_node.client(dds_client)
    c.mark_outputs()
    c.send_text(c.texts[0])
    c.play(0, 40)
    c.wait_outputs()  # every message of the 40 frames is here: what follows is the clear's
    before = len(c.received)
    assert before > 0 and c.open_segments(), "segments are open before the clear"
    c.send_text("")
    c.wait_all_final()
    cleared_at = len(c.received)
    after = c.segments(before)
    assert after, "clearing the query publishes the open segments once more, FINAL"
    assert all(s["status"] == FINAL for m in after for s in m["segments"]), "nothing but FINAL after the clear"
    c.play(40, 40)
    assert not open_after(c.segments(), len(c.received))
    assert len(c.received) == cleared_at, "no segments for frames after the clear"
    assert c.tracks[-1].query == "" and c.tracks[-1].target_person_id == -1, "tracked_persons shows no query"


def test_malformed_input_is_survived(shared_node, dds_client):
    c = shared_node.client(dds_client)
    c.send_text(c.texts[0])
    errors_before = int(c.diag(fresh=True)["decode_errors"])
    good = c.frames[0]
    h = Header(frame_id="head_camera")
    bad = [
        Image(header=h, height=240, width=320, encoding="rgb8", step=100, data=good.tobytes()),  # wrong step
        Image(header=h, height=240, width=320, encoding="bayer_weird16", step=640, data=bytes(240 * 640)),
        Image(header=h, height=0, width=0, encoding="rgb8", step=0, data=b""),
        Image(header=h, height=4320, width=7680, encoding="mono8", step=7680, data=bytes(7680 * 4320)),  # 8K
        Image(header=h, height=240, width=320, encoding="rgb8", step=960, data=good.tobytes()[:1000]),  # short
    ]
    for j, msg in enumerate(bad):
        msg.header.stamp = ns_to_stamp(c.stamp(j * 10))
        c.image_pub.publish(msg)
        c.spin_for(0.3)
    text = c.texts[0]
    for t in ["", "x" * 1_000_000, "der ältere Mann im roten Hemd 👴🏻 — 红衬衫", f"  {text}\t\n"]:
        c.send_text(t)
        if len(t) > 1000:  # a 1 MB sample takes a while to fragment across; the latched writer keeps
            c.spin_for(1.5)  # only the newest text, so let it arrive first
    c.play(60, 40)
    assert shared_node.node.alive
    assert int(c.diag(fresh=True)["decode_errors"]) - errors_before == len(bad), "each bad image counted"
    log = shared_node.log(c)  # ... and named with its reason
    for reason in ("step 100 < 960", "unsupported encoding 'bayer_weird16'", "empty image: 0x0",
                   "7680x4320 has more than max_image_pixels", "truncated to 512"):  # fmt: skip
        assert reason in log, reason
    assert c.segments(), "good frames after the bad ones must still be served"
    assert c.received[-1].query == text, "the query is the text without surrounding whitespace"


def test_stamps_going_backwards_reset_and_continue(shared_node, dds_client):
    c = shared_node.client(dds_client)
    backwards = int(c.diag(fresh=True)["stamps_went_backwards"])
    c.send_text(c.texts[0])
    c.play(0, 40)
    before_loop = len(c.received)
    c.tracks.clear()
    c.t0 -= 10**11  # the bag loops: the clock restarts, earlier
    c.play(0, 40)
    assert shared_node.node.alive and int(c.diag(fresh=True)["stamps_went_backwards"]) == backwards + 1
    assert len(c.received) > before_loop > 0


def test_external_boxes_are_matched_to_frames_by_stamp(shared_node, dds_client):
    """Boxes stamped like the frame, or within persons_stamp_tolerance (50 ms), are used; a frame
    with no boxes near its stamp is processed without boxes and counted in /diagnostics."""
    c = shared_node.client(dds_client)
    without = int(c.diag(fresh=True)["frames_without_persons"])
    c.send_text(c.texts[0])
    for i, offset in enumerate([0] * 16 + [20_000_000] * 8 + [1_000_000_000] * 8):
        c.send_frame(i, persons_offset_ns=offset)
        c.spin_for(FRAME_GAP)
    c.wait_processed(c.stamp(31))
    with_boxes = {(stamp_to_ns(m.header.stamp) - c.t0) // PERIOD_NS for m in c.tracks
                  if any(p.frames_since_seen == 0 for p in m.persons)}  # fmt: skip
    assert set(range(24)) <= with_boxes, "exact and 20 ms-late boxes are used"
    assert not with_boxes & set(range(25, 32)), "boxes 1 s away are not taken for a frame"
    assert int(c.diag(fresh=True)["frames_without_persons"]) - without >= 7


def test_ten_thousand_boxes_per_frame_are_capped(shared_node, dds_client, capsys):
    """10,000 boxes per persons message with new ids every frame (once 2.7-5.3 GB of RSS and 17 s
    of latency): boxes are capped at max_boxes, counted, and ordinary frames still get segments.
    The referred target may be one of the flood's boxes, which the tracker no longer hands to a
    real person (they look different): it is kept, lost, for track_lost_seconds (8 s of camera
    time), so the ordinary frames run 12 s."""
    c = shared_node.client(dds_client)
    dropped_before = int(c.diag(fresh=True)["boxes_dropped"])
    c.send_text(c.texts[0])
    for i in range(15):  # 10,000 boxes a frame, ids changing every frame
        msg = TrackedPersonArray(header=Header(stamp=ns_to_stamp(c.stamp(i)), frame_id="head_camera"))
        msg.persons = [
            TrackedPerson(person_id=i * 10_000 + j, detection_confidence=0.5,
                          roi=RegionOfInterest(x_offset=j % 300, y_offset=(j // 300) % 200, width=20, height=40))
            for j in range(10_000)
        ]  # fmt: skip
        c.persons_pub.publish(msg)
        c.image_pub.publish(c.image(c.frames[i % len(c.frames)], c.stamp(i)))
        c.spin_for(0.15)
    c.play(15, 120)
    assert shared_node.node.alive, shared_node.log(c)[-2000:]
    diag = c.diag(fresh=True)
    # every processed flood frame dropped all but 64 boxes (a loaded machine processes fewer frames)
    dropped = int(diag["boxes_dropped"]) - dropped_before
    assert dropped >= 10_000 - 64 and dropped % (10_000 - 64) == 0
    with capsys.disabled():
        print(f"\n10,000-box flood: node max RSS {diag['max_rss_mib']} MiB")
    assert float(diag["max_rss_mib"]) < 2500
    assert c.received and max(stamp_to_ns(m.header.stamp) for m in c.received) >= c.stamp(15)
