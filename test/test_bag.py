"""rhas_bag on recordings built from real footage (OpenCV's vtest.avi, test/helpers/footage.py):
what it writes, that it is deterministic, what it does with bad input, and Ctrl-C. Its parity
with the live node over DDS is test_bag_parity.py."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
import torch
from bags import (
    T0,
    decoded_bag,
    image_msg,
    jpeg_msg,
    messages_of,
    pan_entries,
    read_raw,
    segment_msgs,
    stamps_of,
    vtest_entries,
    write_bag,
)
from contract import contract_violations
from footage import NO_VTEST, VTEST, pan
from node_process import overrides
from rhas_client import segment_dict
from std_msgs.msg import String
from tiny import tiny_node_params

from rhas_msgs.msg import ActionLabels, ActionSegment, TrackedPersonArray
from rhas_ros.bag.cli import main as rhas_bag
from rhas_ros.conversions import ns_to_stamp

PARAMS = dict(window=16, hop=4, min_window_frames=4, ddim_steps=3, sample_fps=5.0, torch_threads=1)


def params(assets, **extra) -> list[str]:
    """rhas_bag's -p arguments: the tiny checkpoint and CLIP, small windows, ``extra`` on top."""
    return overrides({**tiny_node_params(assets / "model.pt", assets / "clip_model", **PARAMS), **extra})


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """rhas_bag runs in this process here and sets torch's threads from its parameter."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = rhas_bag([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rhas_bag_writes_the_node_outputs_of_every_sampled_frame_and_repeats_itself(node_assets, tmp_path, capsys):
    """200 frames of real footage at 25 fps, sampled at 5 fps: 40 processed, none dropped; the
    output holds the node's four topics with the embedded definitions (read back by rosbags and,
    as Foxglove reads it, by the mcap library from the schemas alone); the segment contract holds
    and every segment ends FINAL; a second run writes the same bytes."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    entries = pan_entries(200, fps=25.0)
    bag = write_bag(tmp_path / "in", entries)
    frame_stamps = [log for topic, log, _ in entries if topic == "/image"]
    code, out, err = run(capsys, bag, "--output", tmp_path / "out1", *params(node_assets))
    assert code == 0, err
    assert re.search(r"frames +200 read on /image, 40 processed", out), out
    fps = float(re.search(r"([0-9.]+) processed frames/s", out).group(1))
    assert fps > 0
    raw = read_raw(tmp_path / "out1")
    assert {t: len(v) for t, v in raw.items() if t != "/action_segments"} == {
        "/action_labels": 1, "/tracked_persons": 40, "/detections": 40}  # fmt: skip
    tracks = messages_of(tmp_path / "out1", "/tracked_persons", TrackedPersonArray)
    assert stamps_of(tracks) == frame_stamps[::5]  # every fifth frame: 5 of 25 fps
    assert {m.header.frame_id for m in tracks} == {"camera"} and {m.query for m in tracks} == {"the person on the left"}
    assert any(m.target_person_id >= 0 for m in tracks), "the text grounded a person"
    labels = messages_of(tmp_path / "out1", "/action_labels", ActionLabels)[0]
    assert labels.labels and labels.checkpoint == str(node_assets / "model.pt")
    segs = segment_msgs(tmp_path / "out1")
    assert segs and contract_violations([segment_dict(m) for m in segs], frame_stamps) == []
    final = {s.segment_id for m in segs for s in m.segments if s.status == ActionSegment.STATUS_FINAL}
    assert f"{len(final)} closed FINAL" in out
    # Each output message is logged at the recorded time of the frame it belongs to.
    assert [log for log, _ in raw["/tracked_persons"]] == frame_stamps[::5]
    # The same bag and parameters: the same messages at the same times on every topic (compared
    # decoded: rclpy leaves CDR's alignment padding uninitialised, so equal messages may differ in bytes).
    assert run(capsys, bag, "--output", tmp_path / "out2", *params(node_assets))[0] == 0
    assert decoded_bag(tmp_path / "out2") == decoded_bag(tmp_path / "out1")
    # A reader with no ROS and no rosbags decodes it from the schemas in the file (Foxglove's way).
    (mcap_file,) = (tmp_path / "out1").glob("*.mcap")
    with open(mcap_file, "rb") as f:
        decoded = [(c.topic, m) for _, c, _, m in make_reader(f, decoder_factories=[DecoderFactory()])
                   .iter_decoded_messages()]  # fmt: skip
    assert len(decoded) == sum(map(len, raw.values()))
    by_mcap = [m for t, m in decoded if t == "/action_segments"]
    assert [(m.person_id, [(s.segment_id, s.label, s.status) for s in m.segments]) for m in by_mcap] == [
        (m.person_id, [(s.segment_id, s.label, s.status) for s in m.segments]) for m in segs
    ]


@pytest.mark.skipif(not VTEST.exists(), reason=NO_VTEST)
def test_rhas_bag_runs_through_real_video_with_the_hog_detector(node_assets, tmp_path, capsys):
    """A stretch of vtest.avi itself (people walking through a hall) at half size, 384x288, every
    frame processed by the hog detector (its defaults): frame 18's windows are all under min_score,
    which once made rhas_bag die with an IndexError. It runs to the end with every frame processed,
    the segment contract holds and every segment ends FINAL. 40 frames in CI; RHAS_SLOW_TESTS=1: 400
    (people at half size are small for HOG's 64x128 window: few are confirmed as tracks)."""
    n = 400 if os.environ.get("RHAS_SLOW_TESTS") == "1" else 40
    bag = write_bag(tmp_path / "in", vtest_entries(n, fps=10.0, scale=0.5))
    code, out, err = run(capsys, bag, "--output", tmp_path / "out", *params(node_assets, detector="hog",
                                                                             sample_fps=10.0))  # fmt: skip
    assert code == 0, err[-2000:]
    assert re.search(rf"frames +{n} read on /image, {n} processed", out), out
    assert len(messages_of(tmp_path / "out", "/tracked_persons", TrackedPersonArray)) == n
    msgs = [segment_dict(m) for m in segment_msgs(tmp_path / "out")]
    assert contract_violations(msgs) == [], contract_violations(msgs)[:3]
    last = {s["id"]: s["status"] for m in msgs for s in m["segments"]}  # each segment's latest status
    assert set(last.values()) <= {ActionSegment.STATUS_FINAL}, "every segment FINAL at the end"


def test_sqlite3_compressed_images_and_external_persons_in_everyone_mode(node_assets, tmp_path, capsys, dds_client):
    """The synthetic clip as a sqlite3 recording: JPEG frames (one corrupt) and the upstream
    tracker's persons (recorded after their frame); everyone mode; a sqlite3 output."""
    c = dds_client()  # only for the clip's frames and boxes: nothing is published
    entries = []
    for i in range(40):
        stamp = c.stamp(i)
        jpg = jpeg_msg(c.frames[i], stamp)
        if i == 17:
            jpg.data = bytes(jpg.data[:200]) + b"\x00broken"
        entries += [("/image/compressed", stamp, jpg), ("/persons", stamp + 2_000_000, c.persons_msg(i, stamp))]
    bag = write_bag(tmp_path / "in", entries, storage="sqlite3")
    argv = params(node_assets, detector="external", segment_all_persons=True, use_compressed=True, sample_fps=100.0)
    code, out, err = run(capsys, bag, "-o", tmp_path / "out", "--storage", "sqlite3", *argv)
    assert code == 0, err
    assert list((tmp_path / "out").glob("*.db3")), "a sqlite3 bag"
    assert "39 processed" in out and "1 undecodable" in out and "corrupt or unsupported" in err
    segs = segment_msgs(tmp_path / "out")
    assert {m.person_id for m in segs} == {1, 2, 3}
    assert contract_violations([segment_dict(m) for m in segs], [c.stamp(i) for i in range(40)]) == []


def test_unknown_encoding_is_skipped_and_counted_and_messages_out_of_order_are_sorted(node_assets, tmp_path, capsys):
    """Frames 10-12 in an encoding the node cannot decode are skipped, counted and reported; a
    recording whose frames were logged out of order (pairs swapped) gives the same output as the
    ordered one, message for message."""
    entries = pan_entries(60, fps=10.0)
    for k in (10, 11, 12):
        topic, log_ns, _ = entries[k + 1]  # entry 0 is the text
        entries[k + 1] = (topic, log_ns, image_msg(pan(k), log_ns, encoding="bayer_rggb16_weird"))
    shuffled = list(entries)
    for k in range(20, 50, 2):  # frames k and k + 1 logged in the other order
        (ta, la, ma), (tb, lb, mb) = shuffled[k + 1], shuffled[k + 2]
        shuffled[k + 1], shuffled[k + 2] = (tb, la, mb), (ta, lb, ma)
    write_bag(tmp_path / "ordered", entries)
    write_bag(tmp_path / "shuffled", shuffled)
    argv = params(node_assets, sample_fps=100.0)
    for name in ("ordered", "shuffled"):
        code, out, err = run(capsys, tmp_path / name, "-o", tmp_path / f"{name}_out", *argv)
        assert code == 0, err
        assert "57 processed" in out and "3 undecodable" in out and "bayer_rggb16_weird" in err, (out, err)
    a, b = segment_msgs(tmp_path / "ordered_out"), segment_msgs(tmp_path / "shuffled_out")
    assert a and [segment_dict(m) for m in a] == [segment_dict(m) for m in b]
    ta = messages_of(tmp_path / "ordered_out", "/tracked_persons", TrackedPersonArray)
    tb = messages_of(tmp_path / "shuffled_out", "/tracked_persons", TrackedPersonArray)
    assert ta == tb and stamps_of(ta) == sorted(stamps_of(ta))


def _no_output(tmp_path, name="out") -> bool:
    return not (tmp_path / name).exists() and not list(tmp_path.glob(f".{name}.partial"))


def test_bad_bags_and_arguments_are_named_and_nothing_is_written(node_assets, tmp_path, capsys):
    good = write_bag(tmp_path / "good", pan_entries(12, fps=5.0))
    argv = params(node_assets)
    # truncated mcap
    trunc = write_bag(tmp_path / "trunc", pan_entries(12, fps=5.0))
    (f,) = trunc.glob("*.mcap")
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    # corrupt sqlite3
    broken = write_bag(tmp_path / "broken", pan_entries(12, fps=5.0), storage="sqlite3")
    (db,) = broken.glob("*.db3")
    db.write_bytes(b"\x00" * 100 + db.read_bytes()[100:])
    no_images = write_bag(tmp_path / "no_images", [("/referring_text", T0, String(data="hi"))])
    two = write_bag(tmp_path / "two", [("/cam_left", T0, image_msg(pan(0), T0)),
                                       ("/cam_right", T0 + 1, image_msg(pan(1), T0))])  # fmt: skip
    (tmp_path / "old.bag").write_bytes(b"#ROSBAG V2.0\n")
    cases = [  # (input, parameters changed, more arguments, what the error says)
        (trunc, {}, [], f"{trunc} cannot be read"),
        (broken, {}, [], f"{broken} cannot be read"),
        (no_images, {}, [], "has no image topic (sensor_msgs/Image or CompressedImage); its topics: /referring_text"),
        (two, {}, [], "has 2 image topics: /cam_left (Image), /cam_right (Image); choose one (image_topic)"),
        (two, {"image_topic": "/cam_middle"}, [], "image topic /cam_middle is not in the bag"),
        (tmp_path / "old.bag", {}, [], "is a ROS 1 bag: convert it first"),
        (tmp_path / "missing", {}, [], "missing: no such bag"),
        (good, {"sample_fps": -3.0}, [], "Parameter sample_fps out of range"),
        (good, {"sample_fps": "fast"}, [], "'sample_fps' to 'fast' of type 'STRING', expecting type 'DOUBLE'"),
        (good, {}, ["-p", "no_such_param"], "expected NAME:=VALUE"),
        (good, {}, ["--params-file", tmp_path / "nope.yaml"], "params file"),
        (good, {"detector": "external"}, [], "reads rhas_msgs/msg/TrackedPersonArray on /persons; the bag has nothing"),
        (good, {"checkpoint": "/nonexistent.pt"}, [], "configure failed: checkpoint /nonexistent.pt does not exist"),
    ]
    for bag, changed, extra, message in cases:
        code, _, err = run(capsys, bag, "-o", tmp_path / "out", *params(node_assets, **changed), *extra)
        assert code == 2 and message in err, (bag, changed, extra, err)
        assert _no_output(tmp_path), (bag, changed, extra)
    # An existing output is never replaced without --overwrite, and replaced whole with it.
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code, _, err = run(capsys, good, "-o", tmp_path / "out", *argv)
    assert code == 2 and "exists: choose another --output or pass --overwrite" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
    assert run(capsys, good, "-o", tmp_path / "out", "--overwrite", *argv)[0] == 0
    assert not (tmp_path / "out" / "keep.txt").exists() and segment_msgs(tmp_path / "out") is not None


def test_a_bag_that_breaks_part_way_leaves_nothing(node_assets, tmp_path, capsys):
    """Damage after the first frames: the error names the bag, no output and no partial folder stay."""
    bag = write_bag(tmp_path / "in", pan_entries(60, fps=10.0))
    (f,) = bag.glob("*.mcap")
    data = bytearray(f.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 300_000] = b"\x00" * 300_000
    f.write_bytes(bytes(data))
    code, _, err = run(capsys, bag, "-o", tmp_path / "out", *params(node_assets, sample_fps=100.0))
    assert code == 2 and f"{bag} is corrupt after" in err, err
    assert _no_output(tmp_path)


def test_ctrl_c_leaves_a_closed_readable_bag_of_what_was_done(node_assets, tmp_path, capsys):
    """A real SIGINT to this process while rhas_bag runs (its handler is installed once the output
    is open): it stops after the frame in progress, closes the open segments and the bag, exit 130."""
    bag = write_bag(tmp_path / "in", pan_entries(200, fps=25.0))
    partial = tmp_path / ".out.partial"

    def interrupt():
        deadline = time.monotonic() + 60
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(2.5)  # some frames done (5-25 frames/s here, of 200)
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    code, out, err = run(capsys, bag, "-o", tmp_path / "out", *params(node_assets, sample_fps=100.0))
    assert code == 130, err
    assert "INTERRUPTED" in out
    processed = int(re.search(r"(\d+) processed", out).group(1))
    assert 0 < processed < 200
    segs = segment_msgs(tmp_path / "out")
    assert segs and contract_violations([segment_dict(m) for m in segs]) == [], "every segment closed FINAL"
    assert len(messages_of(tmp_path / "out", "/tracked_persons", TrackedPersonArray)) == processed
    assert not partial.exists()
    assert signal.getsignal(signal.SIGINT) is before, "the handler is given back"


def test_texts_take_effect_at_their_recorded_times(node_assets, tmp_path, capsys):
    """A text recorded part way applies from the frames after it; --text replaces the recorded ones."""
    entries = pan_entries(30, fps=5.0, text=None)
    entries.insert(15, ("/referring_text", T0 + 14 * 200_000_000 + 1, String(data="the person on the left")))
    bag = write_bag(tmp_path / "in", entries)
    assert run(capsys, bag, "-o", tmp_path / "a", *params(node_assets))[0] == 0
    tracks = messages_of(tmp_path / "a", "/tracked_persons", TrackedPersonArray)
    assert [m.query for m in tracks] == [""] * 15 + ["the person on the left"] * 15
    code, out, _ = run(capsys, bag, "-o", tmp_path / "b", "--text", "someone", *params(node_assets))
    assert code == 0 and "1 recorded texts ignored" in out
    assert {m.query for m in messages_of(tmp_path / "b", "/tracked_persons", TrackedPersonArray)} == {"someone"}
    assert ns_to_stamp(T0) == tracks[0].header.stamp
