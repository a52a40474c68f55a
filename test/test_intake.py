"""The node's intake policy and diagnostics (rhas_ros.core.intake, .diagnostics), without ROS: which
frames are kept by stamp, the bounded latest-wins queue, texts delivered twice, boxes by stamp."""

from __future__ import annotations

import threading
import time

import pytest

from rhas_ros.core.diagnostics import ERROR, OK, WARN, Counters, RecentCounts, pipeline_status
from rhas_ros.core.intake import Inbox, Stamp, StampGate, TextGate, Throttle, clean_query, shown

S = 1_000_000_000


def test_a_jump_forward_is_one_rule_with_going_backwards():
    gate = StampGate()
    assert gate.check(100, 0, 5.0, max_gap_s=5.0) is Stamp.ACCEPTED
    assert gate.check(104, 900_000_000, 5.0, max_gap_s=5.0) is Stamp.ACCEPTED, "4.9 s: dropped frames, not a jump"
    assert gate.check(3705, 0, 5.0, max_gap_s=5.0) is Stamp.JUMPED and gate.gap_s == pytest.approx(3600.1)
    assert gate.check(3705, 200_000_000, 5.0, max_gap_s=5.0) is Stamp.ACCEPTED, "the stream goes on from the jump"
    assert gate.check(99_999, 0, 5.0, max_gap_s=0.0) is Stamp.ACCEPTED, "0: never a jump"


def test_stamps_are_subsampled_refused_or_reset():
    gate = StampGate()
    verdicts = [gate.check(sec, ns, sample_fps=5.0) for sec, ns in [
        (10, 0), (10, 100_000_000), (10, 200_000_000), (10, 200_000_000), (10, 400_000_000),  # 5 fps of 10
        (10, 1_000_000_000), (-1, 0), (9, 0), (9, 150_000_000), (9, 200_000_000),
    ]]  # fmt: skip
    assert verdicts == [
        Stamp.ACCEPTED, Stamp.SUBSAMPLED, Stamp.ACCEPTED, Stamp.REPEATED, Stamp.ACCEPTED,
        Stamp.INVALID, Stamp.INVALID, Stamp.BACKWARDS, Stamp.SUBSAMPLED, Stamp.ACCEPTED,
    ]  # fmt: skip
    assert gate.last_ns == 9 * S + 200_000_000, "a backwards stamp restarts the clock; invalid ones never count"


def test_inbox_keeps_the_latest_frames_and_counts_drops():
    counts = Counters()
    inbox = Inbox(counts)
    inbox.start()
    for i in range(5):
        inbox.put_frame(i, limit=2)
    assert len(inbox) == 2 and counts["dropped"] == 3
    inbox.put_query("the man in red")
    work = inbox.take(timeout=0)
    assert (work.frame, work.query, work.restart, work.config) == (3, "the man in red", False, None)
    assert inbox.take(timeout=0).frame == 4 and inbox.take(timeout=0).frame is None


def test_a_restart_applies_at_its_frame_and_survives_the_queue_dropping_it():
    """The clock jumped before frame 7: frames queued before it are still processed (the end of
    the old stream), the restart comes with frame 7; if the queue drops frame 7, the next frame
    kept carries the restart."""
    inbox = Inbox()
    inbox.start()
    inbox.put_frame(6, limit=3)
    inbox.put_frame(7, limit=3, restart=True)
    assert [(w.frame, w.restart) for w in (inbox.take(0), inbox.take(0))] == [(6, False), (7, True)]
    inbox.put_frame(7, limit=1, restart=True)
    inbox.put_frame(8, limit=1)  # 7 dropped: 8 starts the new stream
    work = inbox.take(0)
    assert (work.frame, work.restart) == (8, True)
    inbox.put_frame(1, limit=2, restart=True)
    inbox.put_frame(2, limit=2)
    inbox.put_frame(3, limit=2)  # 1 dropped: its restart passes to 2, the oldest kept
    assert [(w.frame, w.restart) for w in (inbox.take(0), inbox.take(0))] == [(2, True), (3, False)]


def test_a_closed_inbox_ends_the_worker_and_keeps_what_the_node_was_told():
    inbox = Inbox()
    inbox.start()
    got = []
    worker = threading.Thread(target=lambda: got.append(inbox.take(timeout=10)))
    worker.start()
    time.sleep(0.05)
    inbox.close()
    worker.join(timeout=60)
    assert not worker.is_alive() and got == [None]
    inbox.put_frame("frame", limit=2)
    inbox.put_query("kept")
    inbox.close()
    inbox.start()
    work = inbox.take(timeout=0)
    assert work.query == "kept" and work.frame is None, "the text survives a stop; queued frames do not"


def test_boxes_are_matched_to_a_frame_by_stamp_within_the_tolerance():
    inbox = Inbox()
    inbox.start()
    inbox.put_persons(100 * S, "exact")
    inbox.put_persons(101 * S + 20_000_000, "late by 20 ms")
    assert inbox.persons_for(100 * S, 0.05, wait_s=0) == "exact"
    assert inbox.persons_for(101 * S, 0.05, wait_s=0) == "late by 20 ms"
    # None near, and newer boxes arrived: no wait. Asked to wait an hour, it answers at once (a hung
    # thread would fail the 60 s join, a deadline that only stops the test).
    answer = []
    worker = threading.Thread(target=lambda: answer.append(inbox.persons_for(50 * S, 0.05, wait_s=3600)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert answer == [None] and not worker.is_alive()
    assert inbox.persons_for(150 * S, 0.05, wait_s=0.1) is None, "none near after waiting for them"
    threading.Timer(0.05, inbox.put_persons, (200 * S, "on its way")).start()
    assert inbox.persons_for(200 * S, 0.05, wait_s=5) == "on its way", "waits for boxes still in flight"
    for i in range(100):
        inbox.put_persons(300 * S + i, i)
    assert inbox.persons_for(100 * S, 0.05, wait_s=0) is None, "only the newest 64 messages are kept"


def test_texts_delivered_twice_are_applied_once_and_a_flood_is_logged_once_a_second():
    gate = TextGate()
    first = gate.receive("  the man \x1b[31min red\t", b"pub", 1, max_chars=512)
    assert (first.text, first.truncated) == ("the man [31min red", False)
    assert first.log.startswith("referring text: 18 characters, sha256 ") and "man" not in first.log, "INFO: no text"
    assert first.debug == "referring text: 'the man [31min red'", "DEBUG: the text"
    full = TextGate().receive("the man", b"pub", 1, max_chars=512, full=True)
    assert full.log == "referring text: 'the man'" and full.debug is None, "log_referring_text: the text at INFO"
    assert gate.receive("  the man \x1b[31min red\t", b"pub", 1, max_chars=512) is None, "the other subscription's copy"
    again = gate.receive("the man [31min red", b"other", 7, max_chars=512)
    assert again.text == first.text and again.log is None, "the same text from a republisher: applied, not logged"
    logs = [gate.receive(f"flood {i}", b"pub", 10 + i, max_chars=512).log for i in range(50)]
    assert sum(line is not None for line in logs) <= 1
    assert gate.receive("", b"pub", None, 512).text == "", "an empty text clears (no sequence number: never a copy)"


def test_clean_query_bounds_work_and_strips_control_characters():
    text, truncated = clean_query("x" * 1_000_000, 512)
    assert len(text) == 512 and truncated
    assert clean_query("a\u200bb\x07  c\n d", 512) == ("ab c d", False)
    assert shown("y" * 500).endswith("... (500 chars)") and shown("\x1b") == "'\\x1b'"


def test_throttle_once_per_key_per_period():
    th = Throttle(period_s=60.0)
    assert [th.ready("a"), th.ready("a"), th.ready("b")] == [True, False, True]


@pytest.mark.parametrize(
    ("counts", "level", "message"),
    [
        ({}, OK, "ok"),
        ({"stamp_repeated": 3}, WARN, "images with repeated stamps: 3"),
        ({"dropped": 2, "stamp_repeated": 3}, WARN, "frames dropped (queue full): 2; images with repeated stamps: 3"),
        ({"decode_errors": 1, "bad_stamps": 2}, WARN, "images rejected: 3"),
        ({"frames_in": 100, "frames_skipped_fps": 50}, OK, "ok"),
    ],
)
def test_diagnostics_level_and_message_follow_what_happened_recently(counts, level, message):
    st = pipeline_status(Counters(counts), counts, {"queue_length": 1}, "active", image_silence_s=0.5)
    assert (st.level, st.message) == (level, message)
    assert st.values["queue_length"] == "1" and float(st.values["max_rss_mib"]) > 0 and st.values["state"] == "active"
    assert st.values["frames_received"] == str(counts.get("frames_in", 0))


def test_the_level_recovers_after_a_burst_and_the_totals_stay():
    counts, recent = Counters(), RecentCounts(window_s=10.0)
    assert recent.update(counts, now=0.0) == {}
    counts["dropped"] += 1  # one dropped frame at t = 0.5
    levels = []
    for t in range(1, 25):
        st = pipeline_status(counts, recent.update(counts, now=float(t)), {}, "active", image_silence_s=0.1)
        levels.append(st.level)
    assert levels[:10] == [WARN] * 10 and levels[11:] == [OK] * 13, levels
    assert st.values["frames_dropped_queue_full"] == "1", "the total stays in the values"


def test_errors_show_with_their_count_and_the_last_reason_while_they_recur():
    """A frame the worker could not process (a detector bug, say) is WARN, counted, and the message
    names the last reason, as long as failures happened within the window; then OK again."""
    counts, recent = Counters(), RecentCounts(window_s=10.0)
    last = {"last_error": "frame processing: IndexError: arrays used as indices (detectors.py:72)"}
    levels = []
    for t in range(30):
        if t < 12 and t % 4 == 0:  # fails at t = 0, 4, 8
            counts["worker_errors"] += 1
        st = pipeline_status(counts, recent.update(counts, now=float(t)), last, "active", image_silence_s=0.1)
        levels.append(st.level)
        if t == 9:
            assert st.message == f"callback or worker errors: 3 (last: {last['last_error']})", st.message
    assert levels[:18] == [WARN] * 18 and levels[19:] == [OK] * 11, levels
    assert st.values["worker_errors"] == "3" and st.values["last_error"] == last["last_error"]


@pytest.mark.parametrize(
    ("state", "silence", "level", "message"),
    [
        ("unconfigured", None, WARN, "unconfigured: not processing"),
        ("configure failed: /x.pt does not exist", None, ERROR, "configure failed: /x.pt does not exist"),
        ("inactive", None, WARN, "inactive: not processing"),
        ("active", 7.2, ERROR, "no image for 7 s"),
        ("active", 4.0, OK, "ok"),
    ],
)
def test_the_lifecycle_state_and_the_camera_watchdog(state, silence, level, message):
    st = pipeline_status(Counters(), {}, {}, state, silence, image_timeout_s=5.0)
    assert st.level == level and st.message.startswith(message)
