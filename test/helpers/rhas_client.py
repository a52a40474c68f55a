"""A small DDS client for the tests of a rhas_node running in another process: it publishes what a
camera, an upstream detector and an operator would (a synthetic clip's frames and person boxes,
referring texts), records what the node publishes, and calls its lifecycle and parameter
services. The test says what to send and what to check; this only knows how.

It runs in the test's own process on its own rclpy context (the test's isolated domain).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from graph_probe import local_node
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.parameter import Parameter, parameter_value_to_python
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest
from std_msgs.msg import Header, String

from hopadiff.frames import read_frames
from rhas_msgs.msg import ActionLabels, ActionSegment, ActionSegmentArray, TrackedPerson, TrackedPersonArray
from rhas_ros import qos
from rhas_ros.conversions import ns_to_stamp, stamp_to_ns

FRAME_GAP = 0.01  # s between frames: a 100 Hz camera, faster than the test node on this machine, which
# queues every frame (queue_policy all) and processes it however slow it is
IMAGE_DEPTH = 200  # the reliable image publisher's history, as deep as the test node's subscription: a
# node that falls behind gets every frame late, none overwritten (helpers/node_process.py)
PERIOD_NS = 100_000_000  # camera stamps 10 frames/s apart
TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
    "active_shutdown": Transition.TRANSITION_ACTIVE_SHUTDOWN,
}


def segment_dict(m: ActionSegmentArray) -> dict:
    """An ActionSegmentArray as the dict the contract checks read (test/helpers/contract.py)."""
    return {
        "stamp": stamp_to_ns(m.header.stamp),
        "frame_id": m.header.frame_id,
        "person_id": m.person_id,
        "query": m.query,
        "conf": m.grounding_confidence,
        "window": [stamp_to_ns(m.window_start), stamp_to_ns(m.window_end)],
        "segments": [
            {"id": s.segment_id, "rev": s.revision, "status": s.status, "class_id": s.class_id, "label": s.label,
             "conf": s.confidence, "start": stamp_to_ns(s.start), "end": stamp_to_ns(s.end)}
            for s in m.segments
        ],
    }  # fmt: skip


class RhasClient:
    def __init__(self, clip_dir: Path, domain_id: int, reliable_images: bool = True, t0: int = 10**12):
        self.context, self.node, self.executor = local_node("rhas_test_client", domain_id)
        doc = json.loads((clip_dir / "extract.json").read_text())
        video = doc["videos"][0]
        self.frames = read_frames(clip_dir / video["video"])
        self.persons = video["persons"]  # the clip's persons: "text", per frame "boxes"
        self.texts = [p["text"] for p in self.persons]
        self.t0 = t0  # camera clock of frame 0, ns
        n = self.node
        img_qos = qos.image_qos("reliable" if reliable_images else "sensor_data", IMAGE_DEPTH)  # the node's profiles
        self.image_pub = n.create_publisher(Image, "image", img_qos)
        self.compressed_pub = n.create_publisher(CompressedImage, "image/compressed", img_qos)
        self.persons_pub = n.create_publisher(TrackedPersonArray, "persons", qos.reliable())
        self.text_pub = n.create_publisher(String, "referring_text", qos.latched())
        self.received: list[ActionSegmentArray] = []
        self.tracks: list[TrackedPersonArray] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.debug_images: list[Image] = []
        self.labels: list[str] = []
        self._clients: dict = {}  # service name -> client, made on first use
        n.create_subscription(ActionSegmentArray, "action_segments", self.received.append, 100)
        n.create_subscription(TrackedPersonArray, "tracked_persons", self.tracks.append, 100)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        n.create_subscription(Image, "/rhas_node/debug_image", self.debug_images.append, 10)
        n.create_subscription(ActionLabels, "action_labels", lambda m: setattr(self, "labels", list(m.labels)),
                              qos.latched())  # fmt: skip

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # ------------------------------------------------------------------ time
    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.01, max(0.0, end - time.monotonic())))

    def spin_until(self, done, timeout: float, step: float = 0.02) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not done():
            self.spin_for(step)
        return bool(done())

    def stamp(self, i: int, period_ns: int = PERIOD_NS) -> int:
        return self.t0 + i * period_ns

    # ------------------------------------------------------------------ stimulus
    def wait_for_node(self, timeout: float = 120) -> None:
        """Until the node is active: its label set arrived and it subscribes to the camera."""
        subscribed = lambda: self.image_pub.get_subscription_count() + self.compressed_pub.get_subscription_count()  # noqa: E731
        assert self.spin_until(lambda: self.labels and subscribed(), timeout), "rhas_node did not come up"

    def send_text(self, text: str) -> None:
        self.text_pub.publish(String(data=text))
        self.spin_for(0.3)

    def persons_msg(self, i: int, stamp_ns: int, hidden=()) -> TrackedPersonArray:
        """The clip's person boxes of frame i (person ids 1, 2, ...; ``hidden`` left out)."""
        msg = TrackedPersonArray(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id="head_camera"))
        t = i % len(self.frames)
        for pid, p in enumerate(self.persons, 1):
            if p["boxes"][t] and pid not in hidden:
                x, y, w, h = p["boxes"][t]
                roi = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
                msg.persons.append(TrackedPerson(person_id=pid, detection_confidence=1.0, roi=roi))
        return msg

    def image(self, rgb: np.ndarray, stamp_ns: int) -> Image:
        header = Header(stamp=ns_to_stamp(stamp_ns), frame_id="head_camera")
        return Image(header=header, height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8",
                     step=rgb.shape[1] * 3, data=rgb.tobytes())  # fmt: skip

    def send_frame(self, i: int, stamp_ns: int | None = None, rgb=None, hidden=(), persons_offset_ns: int = 0):
        """Frame i of the clip (or ``rgb``) and its person boxes (stamped ``persons_offset_ns`` later)."""
        stamp_ns = self.stamp(i) if stamp_ns is None else stamp_ns
        self.persons_pub.publish(self.persons_msg(i, stamp_ns + persons_offset_ns, hidden))
        self.image_pub.publish(self.image(self.frames[i % len(self.frames)] if rgb is None else rgb, stamp_ns))
        self.spin_for(0.005)

    def play(self, first: int, n: int, **kw) -> None:
        """Frames first .. first+n-1, FRAME_GAP apart, then until the node processed the last."""
        for i in range(first, first + n):
            self.send_frame(i, **kw)
            self.spin_for(FRAME_GAP)
        self.wait_processed(self.stamp(first + n - 1))

    def play_until(self, done, first: int = 0, timeout: float = 120.0, before=None, **kw) -> int:
        """Frames from ``first`` on, each once the node processed the one before (as fast as the node
        is, with no backlog), until ``done()`` (or ``timeout``, which only stops a hung test) -> the
        next frame's index. ``before(i)`` runs before frame i is sent; ``kw`` go to send_frame."""
        end, i = time.monotonic() + timeout, first
        while not done() and time.monotonic() < end:
            if before is not None:
                before(i)
            self.send_frame(i, **kw)
            self.spin_until(self.processed(self.stamp(i)), end - time.monotonic())
            i += 1
        return i

    def processed(self, stamp_ns: int):
        """-> a check: has the node processed the frame stamped ``stamp_ns`` (its tracked_persons
        carries that stamp or a later one)?"""
        return lambda: any(stamp_to_ns(m.header.stamp) >= stamp_ns for m in self.tracks)

    def wait_processed(self, stamp_ns: int, timeout: float = 60.0) -> None:
        """Until the node has processed the frame stamped ``stamp_ns`` (the frame's segments are
        published right after its tracked_persons)."""
        self.spin_until(self.processed(stamp_ns), timeout)
        self.spin_for(0.2)

    def mark_outputs(self) -> None:
        """Remember how many segment messages the node had made before this client's frames."""
        self._made_before = int(self.diag(fresh=True)["segment_messages"]) - len(self.received)

    def wait_outputs(self, timeout: float = 60.0) -> None:
        """Until every segment message the node made (its /diagnostics count, since mark_outputs) has
        arrived here: a barrier for a test that counts messages, however late a loaded machine
        delivers them."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if int(self.diag(fresh=True)["segment_messages"]) - self._made_before == len(self.received):
                return
        raise AssertionError(f"segment messages still missing after {timeout} s")

    def wait_all_final(self, timeout: float = 60.0) -> None:
        """Until every segment received so far is FINAL in its latest message."""
        self.spin_until(lambda: not self.open_segments(), timeout, step=0.05)
        self.spin_for(0.2)

    # ------------------------------------------------------------------ what the node published
    def segments(self, since: int = 0) -> list[dict]:
        return [segment_dict(m) for m in self.received[since:]]

    def open_segments(self) -> set[int]:
        status = {s.segment_id: s.status for m in self.received for s in m.segments}
        return {sid for sid, st in status.items() if st != ActionSegment.STATUS_FINAL}

    def targets(self) -> list[int]:
        return [m.target_person_id for m in self.tracks]

    def track_ids(self) -> set[int]:
        return {p.person_id for m in self.tracks for p in m.persons}

    def statuses(self, task: str = "pipeline", node: str = "/rhas_node") -> list:
        """Every /diagnostics status ``<node>: <task>`` received so far, oldest first."""
        name = f"{node}: {task}"
        return [st for d in self.diagnostics for st in d.status if st.name == name]

    def diag_levels(self, task: str = "pipeline", node: str = "/rhas_node") -> list[int]:
        """The level of every /diagnostics status ``<node>: <task>`` received so far, oldest first."""
        return [st.level[0] for st in self.statuses(task, node)]

    def serving_since(self, n: int, task: str = "pipeline", node: str = "/rhas_node") -> bool:
        """Has a status after the first ``n`` said the node serves frames (OK)?"""
        return any(st.level[0] == 0 for st in self.statuses(task, node)[n:])

    def diag(self, fresh: bool = False, task: str = "pipeline", node: str = "/rhas_node") -> dict:
        """The newest /diagnostics status ``<node>: <task>`` as a dict of its values plus "level" (int) and
        "message". ``fresh``: one published after now (what the node counted up to now is in it),
        waited for however long a loaded machine takes (60 s only stop a hung test)."""
        if fresh:
            n = len(self.statuses(task, node))
            assert self.spin_until(lambda: len(self.statuses(task, node)) > n, 60), f"no /diagnostics from {node}"
        found = self.statuses(task, node)
        if not found:
            return {}
        st = found[-1]
        return {kv.key: kv.value for kv in st.values} | {"level": st.level[0], "message": st.message}

    # ------------------------------------------------------------------ services
    def call(self, srv_type, name: str, request, attempts: int = 1):
        """One service call. DDS may match a service's request path before its response path, so a
        reply can be lost right after discovery: a new service gets a moment after it appears, and
        idempotent calls may retry (``attempts``)."""
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.node.create_client(srv_type, name)
            assert client.wait_for_service(timeout_sec=60), f"service {name} not available"
            self.spin_for(0.5)
        for _ in range(attempts):
            future = client.call_async(request)
            self.executor.spin_until_future_complete(future, timeout_sec=60)
            if future.result() is not None:
                return future.result()
        raise AssertionError(f"no reply from {name} after {attempts} attempt(s)")

    def transition(self, name: str, node: str = "/rhas_node", attempts: int = 1) -> bool:
        req = ChangeState.Request(transition=Transition(id=TRANSITIONS[name]))
        return self.call(ChangeState, f"{node}/change_state", req, attempts).success

    def state(self, node: str = "/rhas_node", attempts: int = 1) -> str:
        return self.call(GetState, f"{node}/get_state", GetState.Request(), attempts).current_state.label

    def param_value(self, name: str, node: str = "/rhas_node"):
        """A parameter's value as `ros2 param get` reads it (None: not declared)."""
        res = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=[name]))
        return parameter_value_to_python(res.values[0]) if res.values else None

    def set_parameters(self, node: str = "/rhas_node", attempts: int = 1, **values) -> list:
        """-> one SetParametersResult per value (successful, reason)."""
        params = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        req = SetParameters.Request(parameters=params)
        return self.call(SetParameters, f"{node}/set_parameters", req, attempts).results
