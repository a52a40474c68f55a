"""What the node takes in, and when: the intake policy, free of ROS.

- ``StampGate``: which camera frames are kept, by header stamp (subsampling to ``sample_fps``,
  invalid / repeated stamps refused, a stamp going backwards is a reset).
- ``Inbox``: what the ROS callbacks hand to the worker thread: the frame queue (``queue_policy``
  latest: bounded, latest wins, drops counted; all: every frame waits its turn), the newest
  referring text, new parameters, a pending reset, and the upstream detector's person boxes kept
  by stamp so the worker can take the ones of its frame (as long as a queued frame may need them).
- ``TextGate``: referring texts: a copy delivered twice (two subscriptions, one topic) is
  dropped, the text is cleaned (``clean_query``), and a flood of changing texts is logged at
  most once a second.
- ``Throttle``: a warning once per distinct problem per period (a broken camera or a flood
  would fill the log).
Stamps are integer nanoseconds end to end.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
import unicodedata
from dataclasses import dataclass
from enum import Enum

NS = 1_000_000_000
TEXTS_REMEMBERED = 64  # (publisher, sequence number) pairs kept to recognise a second copy
TEXT_LOG_PERIOD_S = 1.0  # a flood of changing texts: one log line a second
PERSONS_KEPT = 64  # persons messages kept for matching by stamp
PERSONS_WAIT_S = 0.2  # how long the worker waits for the boxes of a frame still on their way


def clean_query(text: str, max_chars: int) -> tuple[str, bool]:
    """An untrusted referring text as the node uses it -> (text, truncated): at most ``max_chars``
    characters (cut first, so a huge text costs nothing), control and format characters (ESC
    sequences, zero-width marks) removed, whitespace runs made one space."""
    text = str(text)
    truncated = len(text) > max_chars
    text = "".join(ch for ch in text[:max_chars] if unicodedata.category(ch)[0] != "C" or ch.isspace())
    return " ".join(text.split()), truncated


class Stamp(Enum):
    ACCEPTED = "accepted"
    INVALID = "invalid"  # nanosec >= 1e9 or negative seconds: would wrap every stamp derived from it
    REPEATED = "repeated"  # the stamp of the previous frame (a camera that does not stamp)
    BACKWARDS = "backwards"  # earlier than the previous frame (a bag loop): accepted, the stream restarts
    JUMPED = "jumped"  # later than the previous frame by more than max_stamp_gap: accepted, the stream restarts
    SUBSAMPLED = "subsampled"  # closer to the previous kept frame than 1 / sample_fps


# What the node counts (rhas_ros.core.diagnostics) and warns for each stamp that is not simply kept.
STAMP_EVENTS = {
    Stamp.INVALID: ("bad_stamps", "skipping image with invalid stamp sec={sec} nanosec={nanosec}"),
    Stamp.REPEATED: (
        "stamp_repeated",
        "images arrive with the stamp of the previous image (is the camera stamping frames?)",
    ),
    Stamp.BACKWARDS: (
        "stamp_went_backwards",
        "image stamp went backwards (bag loop?): segments closed, tracks and windows restarted",
    ),
    Stamp.JUMPED: (
        "stamp_jumped_forward",
        "image stamp jumped {gap:.1f} s forward (more than max_stamp_gap): "
        "segments closed at the last frame before it, tracks and windows restarted",
    ),
    Stamp.SUBSAMPLED: ("frames_skipped_fps", None),
}


class StampGate:
    """Keeps a frame when its stamp is at least 1 / sample_fps after the previous kept one. A
    discontinuity of the camera clock in either direction (a bag loop, a driver restart, a clock
    sync, a recording with a hole) is one rule: the frame is kept and starts the stream anew."""

    def __init__(self):
        self.last_ns: int | None = None
        self.gap_s = 0.0  # the size of the last jump forward

    def check(self, sec: int, nanosec: int, sample_fps: float, max_gap_s: float = 0.0) -> Stamp:
        """``max_gap_s``: a frame later than the previous kept one by more is a jump (0: never)."""
        if not 0 <= nanosec < NS or sec < 0:
            return Stamp.INVALID
        ns = sec * NS + nanosec
        last = self.last_ns
        if last is not None and ns < last:
            self.last_ns = ns
            return Stamp.BACKWARDS
        if last is not None and ns == last:
            return Stamp.REPEATED
        if last is not None and ns - last < NS / sample_fps:
            return Stamp.SUBSAMPLED
        self.last_ns = ns
        if last is not None and max_gap_s > 0 and ns - last > max_gap_s * NS:
            self.gap_s = (ns - last) / NS
            return Stamp.JUMPED
        return Stamp.ACCEPTED


class Throttle:
    """``ready(key)``: True at most once per ``period_s`` for each key (at most ``keys`` remembered)."""

    def __init__(self, period_s: float = 5.0, keys: int = 100):
        self.period_s, self.keys = period_s, keys
        self._last: dict[str, float] = {}

    def ready(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.period_s:
            return False
        if len(self._last) > self.keys:
            self._last.clear()
        self._last[key] = now
        return True


@dataclass(frozen=True)
class TextEvent:
    text: str  # cleaned
    truncated: bool
    log: str | None  # the line to log at INFO (None: unchanged, or rate-limited): the text only when asked
    debug: str | None = None  # the same line with the text, for DEBUG (None: the INFO line has it)


class TextGate:
    """Referring texts from the topic -> what the worker applies, and what to log."""

    def __init__(self):
        self._seen: collections.deque = collections.deque(maxlen=TEXTS_REMEMBERED)
        self._last: str | None = None
        self._logged_at, self._unlogged = -1e9, 0

    def new_subscriptions(self) -> None:
        """The text subscriptions were made anew (activate): a latched text they deliver again is
        applied again, not taken for the other subscription's copy."""
        self._seen.clear()

    def receive(self, raw: str, publisher: bytes, sequence: int | None, max_chars: int,
                full: bool = False) -> TextEvent | None:  # fmt: skip
        """None for a copy already received (the same publisher and sequence number). ``full``: the
        INFO line shows the text (``log_referring_text``); otherwise its length and a short hash, and
        the text goes to the DEBUG line (a referring text describes a person; /rosout is domain-wide)."""
        if sequence is not None:
            if (publisher, sequence) in self._seen:
                return None
            self._seen.append((publisher, sequence))
        text, truncated = clean_query(raw, max_chars)
        log = debug = None
        if text != self._last:  # a repeated text (a latched republisher) is logged once
            self._last = text
            now = time.monotonic()
            if now - self._logged_at >= TEXT_LOG_PERIOD_S:
                more = f" ({self._unlogged} more texts since the last line)" if self._unlogged else ""
                log = (f"referring text: {mentioned(text, full)}" if text else "referring text cleared") + more
                debug = f"referring text: {shown(text)}" if text and not full else None
                self._logged_at, self._unlogged = now, 0
            else:
                self._unlogged += 1
        return TextEvent(text, truncated, log, debug)


LOGGED_TEXT_CHARS = 120  # what a log line shows of an untrusted string


def mentioned(text: str, full: bool = False) -> str:
    """A referring text as the INFO log names it: its length and a short hash (the same text, the
    same hash: a log reader can tell texts apart without reading them), or ``shown`` when ``full``."""
    if full:
        return shown(text)
    return f"{len(text)} characters, sha256 {hashlib.sha256(text.encode()).hexdigest()[:10]}"


def shown(text: str) -> str:
    """An untrusted string for a log line: escaped (repr) and truncated."""
    more = f"... ({len(text)} chars)" if len(text) > LOGGED_TEXT_CHARS else ""
    return repr(text[:LOGGED_TEXT_CHARS]) + more


@dataclass
class Work:
    """One turn of the worker: apply what changed, restart the stream if the frame starts a new one,
    then process the frame (any part may be None / False)."""

    config: object | None
    query: str | None
    frame: tuple | None
    restart: bool = False  # the camera clock jumped before this frame: close and reset first


class Inbox:
    """Callbacks put, the worker takes; one lock and condition for all of it."""

    def __init__(self, counts: collections.Counter | None = None):
        self._cv = threading.Condition()
        self._counts = collections.Counter() if counts is None else counts  # "dropped": frames the queue dropped
        self._frames: collections.deque = collections.deque()  # (frame, restart)
        self._persons: collections.OrderedDict[int, object] = collections.OrderedDict()  # stamp ns -> boxes
        self._query: str | None = None
        self._config = None
        self.open = False

    def start(self) -> None:
        with self._cv:
            self.open = True

    def close(self) -> None:
        """Stop: the worker's ``take`` returns None; queued frames are dropped (the latest text,
        parameters and boxes are kept: they are what the node was told, not frames to process)."""
        with self._cv:
            self.open = False
            self._frames.clear()
            self._cv.notify_all()

    def __len__(self) -> int:
        return len(self._frames)

    def put_frame(self, item, limit: int, restart: bool = False, drop: bool = True) -> None:
        """Queue a frame (latest wins beyond ``limit``; ``drop`` False: the ``all`` queue policy, no
        frame is dropped and ``limit`` is not applied). ``restart``: the stream starts anew with it;
        the frames queued before it are still processed first (they are the end of the old stream),
        and a dropped restart passes to the next frame kept."""
        with self._cv:
            carried = False
            while drop and len(self._frames) >= limit:
                carried |= self._frames.popleft()[1]
                self._counts["dropped"] += 1
            if carried and self._frames:
                self._frames[0] = (self._frames[0][0], True)
            else:
                restart |= carried
            self._frames.append((item, restart))
            self._cv.notify_all()

    def put_query(self, text: str) -> None:
        with self._cv:
            self._query = text
            self._cv.notify_all()

    def put_config(self, config) -> None:
        with self._cv:
            self._config = config
            self._cv.notify_all()

    def take(self, timeout: float = 0.5) -> Work | None:
        """The next turn of work, waiting up to ``timeout``; None once closed."""
        with self._cv:
            self._cv.wait_for(lambda: not self.open or self._frames or self._pending(), timeout)
            if not self.open:
                return None
            frame, restart = self._frames.popleft() if self._frames else (None, False)
            work = Work(self._config, self._query, frame, restart)
            self._config, self._query = None, None
            return work

    def _pending(self) -> bool:
        return self._query is not None or self._config is not None

    # ---------------------------------------------------------------- person boxes by stamp
    def put_persons(self, stamp_ns: int, boxes, merge: bool = False) -> None:
        """The upstream boxes of a stamp; ``merge``: added to those already there (one message per
        person, as ROS4HRI publishes them) instead of replacing them."""
        with self._cv:
            if merge and stamp_ns in self._persons:
                boxes = self._persons[stamp_ns].merged(boxes)
            self._persons[stamp_ns] = boxes
            while len(self._persons) > PERSONS_KEPT + len(self._frames):  # a backlog keeps its frames' boxes
                self._persons.popitem(last=False)
            self._cv.notify_all()

    def persons_for(self, stamp_ns: int, tolerance_s: float, wait_s: float = PERSONS_WAIT_S):
        """The boxes stamped like the frame, else the nearest within ``tolerance_s``, else None.
        Boxes for this frame may still be on their way (another topic): wait up to ``wait_s``
        unless newer boxes already arrived."""
        tol = round(tolerance_s * NS)

        def match():
            if stamp_ns in self._persons:
                return self._persons[stamp_ns]
            near = min(self._persons, key=lambda t: abs(t - stamp_ns), default=None)
            return self._persons[near] if near is not None and abs(near - stamp_ns) <= tol else None

        with self._cv:
            self._cv.wait_for(
                lambda: match() is not None or any(t > stamp_ns + tol for t in self._persons) or not self.open,
                wait_s,
            )
            return match()
