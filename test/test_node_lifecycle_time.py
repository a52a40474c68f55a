"""rhas_node keeps what it was told through the lifecycle and across jumps of the camera clock,
over real DDS with real footage (test/helpers/footage.py: pedestrians of OpenCV's vtest.avi, the
node's HOG detector and tracker): a cleanup -> configure cycle keeps the latched referring text and
never reuses a person id; a +1 h stamp jump closes the open segments at the gap; a depth image is
refused; a 4096x4096 frame is searched at hog_max_side; the shutdown transition ends the process."""

from __future__ import annotations

import threading
import time

import cv2
import pytest
from contract import FINAL, contract_violations
from footage import PHOTO, pan
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from node_process import rhas_node
from rhas_client import FRAME_GAP
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from rhas_ros.conversions import ns_to_stamp, stamp_to_ns

pytestmark = pytest.mark.dds

TEXT = "the person in the dark coat"
HOG = {"detector": "hog", "hog_upscale": 1.0}  # the footage's persons are 100-200 px tall: no upscale needed


def play_footage(c, first: int, n: int) -> None:
    for k in range(first, first + n):
        c.image_pub.publish(c.image(pan(k), c.stamp(k)))
        c.spin_for(FRAME_GAP)
    c.wait_processed(c.stamp(first + n - 1))


def test_a_lifecycle_cycle_keeps_the_latched_query_and_never_reuses_a_person_id(node_assets, ros_env, dds_client):
    """deactivate -> cleanup -> configure -> activate (what nav2's lifecycle manager does on a
    reset) with the latched text publisher still up: segments resume for the same query within a
    window, and the persons after the cycle get ids never used before it."""
    with rhas_node(node_assets, ros_env, **HOG) as node:
        c = dds_client()
        c.wait_for_node()
        c.text_pub.publish(String(data=TEXT))  # latched (transient local); the publisher stays up
        play_footage(c, 0, 40)
        ids_before = c.track_ids()
        assert c.received and ids_before, node.log()[-2000:]
        for step in ("deactivate", "cleanup", "configure", "activate"):
            assert c.transition(step, attempts=1), step
        c.wait_for_node()
        c.tracks.clear()
        mark = len(c.received)
        play_footage(c, 40, 40)
        after = c.received[mark:]
        assert after, f"no segments after the cycle; node log: {node.log()[-2000:]}"
        assert {m.query for m in after} == {TEXT} and c.tracks[-1].query == TEXT
        first = min(stamp_to_ns(m.header.stamp) for m in after)
        assert first <= c.stamp(40 + 16 + 4), "segments resume within a window (W=16, hop 4)"
        ids_after = c.track_ids()
        assert ids_after and not ids_before & ids_after, (ids_before, ids_after)
        assert "(kept)" in node.log(), "the kept query is named when the node becomes active again"


@pytest.fixture(scope="module")
def hog_node(node_assets, second_ros_env):
    with rhas_node(node_assets, second_ros_env, **HOG) as node:
        yield node, second_ros_env


def test_a_forward_jump_of_the_camera_clock_ends_every_segment_at_the_gap(hog_node, dds_client):
    node, env = hog_node
    c = dds_client(env=env, t0=10**13)
    c.wait_for_node()
    jumps = int(c.diag(fresh=True)["stamps_jumped_forward"])
    c.send_text(TEXT)
    play_footage(c, 0, 30)
    last_before = c.stamp(29)
    c.t0 += 3600 * 10**9  # the camera driver restarts an hour later
    play_footage(c, 30, 30)
    c.send_text("")  # the end: every segment FINAL
    c.wait_all_final()
    msgs = c.segments()
    assert contract_violations(msgs) == [], contract_violations(msgs)[:5]
    spans = [(s["start"], s["end"]) for m in msgs for s in m["segments"]]
    assert spans and not [sp for sp in spans if sp[0] <= last_before < sp[1]], "no segment spans the gap"
    assert max(e - s for s, e in spans) < 10 * 10**9
    closing = [m for m in msgs if m["stamp"] == last_before and all(s["status"] == FINAL for s in m["segments"])]
    assert closing, "the open segments were closed, headed by the last frame before the gap"
    assert any(m["stamp"] > last_before for m in msgs), "segmenting goes on after the gap"
    diag = c.diag(fresh=True)
    assert int(diag["stamps_jumped_forward"]) == jumps + 1 and "stamps jumped forward" in diag["message"]
    assert "image stamp jumped 3600.1 s forward" in node.log()  # frame 29 -> 30: 0.1 s + the hour


def test_a_depth_image_is_refused_and_counted(hog_node, dds_client):
    node, env = hog_node
    c = dds_client(env=env, t0=2 * 10**13)
    c.wait_for_node()
    errors = int(c.diag(fresh=True)["decode_errors"])
    depth = Image(header=Header(stamp=ns_to_stamp(c.stamp(0)), frame_id="depth_camera"), height=240, width=330,
                  encoding="16UC1", step=660, data=bytes(240 * 660))  # fmt: skip
    c.image_pub.publish(depth)
    assert c.spin_until(lambda: int(c.diag()["decode_errors"]) > errors, 60), "the depth image was counted"
    assert int(c.diag(fresh=True)["decode_errors"]) == errors + 1
    assert "encoding '16UC1' is not a camera picture" in node.log()
    assert not any(stamp_to_ns(m.header.stamp) == c.stamp(0) for m in c.tracks), "never processed as a frame"


def test_a_16_megapixel_frame_is_searched_at_hog_max_side(hog_node, dds_client):
    """4096x4096 (max_image_pixels' default): the HOG detector searches it shrunk to hog_max_side
    (1280; without the cap a frame took ~8 s on 2 cores), and the boxes come back in the frame's own
    pixels. What a 16 MP frame costs the worker is docs/benchmarks.md's (scripts/bench_tracking.py
    --big-frame); /diagnostics names the size the detector searched (detector_input_px)."""
    _, env = hog_node
    c = dds_client(env=env, t0=3 * 10**13)
    c.wait_for_node()
    photo = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)  # 768x576 -> 4096x3072, padded to 4096x4096
    big = cv2.copyMakeBorder(cv2.resize(photo, (4096, 3072)), 0, 1024, 0, 0, cv2.BORDER_CONSTANT, value=0)
    for k in range(3):  # a new person is confirmed after 3 frames (track_confirm_frames)
        c.image_pub.publish(c.image(big, c.stamp(k)))
    c.wait_processed(c.stamp(2), timeout=120)
    tracked = next(m for m in c.tracks if stamp_to_ns(m.header.stamp) == c.stamp(2))
    assert tracked.persons and max(p.roi.height for p in tracked.persons) > 300, "boxes in the big frame's pixels"
    assert c.diag(fresh=True)["detector_input_px"] == "1280x1280", "searched at hog_max_side, not 4096"


def test_the_shutdown_transition_ends_the_process_with_every_segment_final(node_assets, ros_env, dds_client):
    with rhas_node(node_assets, ros_env, **HOG) as node:
        c = dds_client()
        c.wait_for_node()
        c.send_text(TEXT)
        play_footage(c, 0, 30)
        assert c.open_segments(), "segments are open before the shutdown"
        assert c.transition("active_shutdown")
        code = node.proc.wait(timeout=60)  # only stops a hung test: the process ends by itself
        c.spin_for(0.5)
        assert code == 0, node.log()[-2000:]
        assert not c.open_segments(), "finalizing closed every open segment"


class SlowHub:
    """A model hub on localhost that answers every request with 404 once ``delay_s`` have passed since
    its first request: a configure that asks it for a backbone takes at least that long, idle (what a
    robot sees while BLIP-2 downloads or a model compiles)."""

    def __init__(self, delay_s: float):
        import http.server

        hub = self
        self.first: float | None = None

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                hub.first = hub.first or time.monotonic()
                time.sleep(max(0.0, hub.first + delay_s - time.monotonic()))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _answer  # noqa: N815  (http.server's names)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_node_answers_while_a_configure_takes_20_s(node_assets, ros_env, dds_client, tmp_path, capsys):
    """A configure requested over the lifecycle service (as launch or nav2's lifecycle manager does)
    that waits 22 s on the model hub: meanwhile get_state answers "configuring", the parameter
    services answer, and /diagnostics says what is loading; the configure then fails with the hub's
    reason and the node is unconfigured. Before, the node went silent for the whole configure."""
    hub = SlowHub(22.0)
    env = dict(ros_env, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), HF_HUB_ETAG_TIMEOUT="120",
               HF_HUB_DOWNLOAD_TIMEOUT="120", HF_HUB_DISABLE_TELEMETRY="1")  # fmt: skip
    params = {"autostart": False, "backbone_model": "nobody/tiny-clip", "local_files_only": False}
    try:
        with rhas_node(node_assets, env, **params) as node:
            c = dds_client()
            assert c.state(attempts=5) == "unconfigured"
            change = c.node.create_client(ChangeState, "/rhas_node/change_state")
            reply = change.call_async(ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
            states, params_answered, waits = [], 0, []
            deadline = time.monotonic() + 120  # only stops a hung test
            while not reply.done() and time.monotonic() < deadline:
                asked = time.monotonic()
                states.append(c.state())
                waits.append(time.monotonic() - asked)
                if states[-1] == "configuring":
                    params_answered += c.param_value("window") == 16
                c.spin_for(0.2)
            assert reply.done() and not reply.result().success, "the hub never answered: configure fails"
            loading = [st.message for st in c.statuses() if st.message.startswith("configuring: loading checkpoint")]
            assert c.state() == "unconfigured" and "the hub could not be reached" in node.log(), node.log()[-2000:]
    finally:
        hub.close()
    with capsys.disabled():
        print(f"\nduring a {len(states)}-answer configure: get_state waited at most {max(waits):.2f} s")
    assert states.count("configuring") >= 10, states
    assert params_answered >= 1 and loading, (params_answered, loading)
