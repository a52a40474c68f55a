"""The node's per-frame work, free of ROS: detect -> track -> encode -> ground -> stream.

``process`` runs the camera side (detector, tracker, backbone on the frame and the person
crops); ``step`` runs everything after the backbone — grounding, then the streaming segmenter
of hopadiff.streaming (buffers, window schedule, inference, stitching), the same code
``hopadiff-eval --streaming`` runs. A recorded sequence of features and tracks replays through
``step`` alone.

In referring mode every track is buffered (its crop is encoded for grounding anyway), so a
change of target has a full window at once; inference runs only for the target. In everyone
mode all tracks (up to max_persons) are segmented, batched into one forward pass per window
length.

Segments are closed (published FINAL) whenever what they describe ends: the person's track is
lost, the target switches to another person, the query is cleared or changed, the stream is
reset (stamps went backwards) and, from the node, on deactivate and shutdown (``close_all``).
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

import numpy as np

from hopadiff.frames import crop
from hopadiff.streaming import Segment, Segmenter, WindowOutput

from .appearance import color_descriptors
from .grounding import Grounder
from .settings import Settings, tracker_params
from .tracker import PersonTracker, Track


@dataclass
class PersonOutput:
    person_id: int
    query: str
    grounding_confidence: float
    box: tuple[float, float, float, float]
    window_start_ns: int
    window_end_ns: int
    segments: list[Segment]  # with start_ns / end_ns camera stamps
    closed: bool = False  # the person's stream was closed: every segment FINAL


@dataclass
class FrameResult:
    stamp_ns: int
    tracks: list[Track]
    target_id: int | None
    scores: dict[int, float]
    outputs: list[PersonOutput]
    inference_ms: float | None


class RhasPipeline:
    def __init__(self, model, labels: list[str], backbone, detector, settings: Settings, holistic_text: bool = False):
        """settings: window and hop resolved (non-zero). holistic_text: the checkpoint was trained on
        holistic features conditioned on the referring text (the frame is encoded with the active
        query, and a new query restarts the windows)."""
        self.model, self.labels, self.backbone, self.detector = model, labels, backbone, detector
        self.settings, self.holistic_text = settings, holistic_text
        self.segmenter = Segmenter(model, len(labels), settings)
        self.tracker = PersonTracker(tracker_params(settings))
        self.grounder = Grounder(settings)
        self.query = ""
        self._text_emb = None
        self.dropped_boxes = 0
        self.k = -1
        self.last_target: int | None = None
        self.boxes: dict[int, tuple] = {}  # last box per track (for closing messages)

    def apply_settings(self, settings: Settings) -> None:
        """Settings that take effect at once (the node's dynamic parameters)."""
        if (settings.window, settings.hop) != (self.settings.window, self.settings.hop):
            raise ValueError("window and hop take effect at configure")
        self.settings = self.grounder.settings = self.segmenter.cfg = settings
        self.tracker.params = tracker_params(settings)

    @property
    def referring(self) -> bool:
        return not self.settings.segment_all_persons

    # ------------------------------------------------------------------ state
    def reset(self) -> list[PersonOutput]:
        """Forget all buffers and tracks (e.g. when stamps jump backwards: a bag loop); open
        segments are closed first and returned for publishing."""
        closed = self.close_all()
        self.tracker.reset()
        self.grounder.reset()
        self.segmenter.reset()
        self.k = -1
        self.last_target = None
        self.boxes = {}
        return closed

    def close_all(self) -> list[PersonOutput]:
        """Close every open segment (deactivate, shutdown, reset)."""
        return self._closed(self.segmenter.close())

    def set_query(self, text: str) -> tuple[str, list[PersonOutput]]:
        """Set (or, with an empty string, clear) the referring text -> (the text in use, closing
        outputs: a changed or cleared query ends the segments grounded to the old one)."""
        # Control and format characters (ESC sequences, zero-width marks) never reach the query
        # that is republished; whitespace runs become one space.
        text = "".join(ch for ch in str(text) if unicodedata.category(ch)[0] != "C" or ch.isspace())
        text = " ".join(text.split())[: self.settings.max_text_chars]
        closed = []
        if text != self.query:
            if self.referring:
                closed = self.close_all()
            self.grounder.reset()
            self.last_target = None
            if self.holistic_text:  # the buffered holistic features belong to the old text
                self.segmenter.clear_holistic()
        self.query = text
        self._text_emb = self.backbone.encode_texts([text])[0] if text else None
        return text, closed

    def memory_frames(self) -> int:
        return self.segmenter.memory_frames()

    # ------------------------------------------------------------------ per frame
    def process(self, rgb: np.ndarray, stamp_ns: int, persons=None) -> FrameResult:
        """One sampled frame. ``persons``: (boxes (N,4) xywh, scores, external ids) for the external detector."""
        if persons is not None:
            boxes, scores, ext_ids = persons
        elif self.detector is not None:
            boxes, scores = self.detector.detect(rgb)
            ext_ids = None
        else:
            boxes, scores, ext_ids = np.zeros((0, 4)), np.zeros(0), None
        boxes, scores, ext_ids = self.sanitize(boxes, scores, ext_ids)
        # Every detection the tracker may use is encoded before tracking: the crop features are
        # HopaDIFF's person-specific input, the tracker's appearance for re-identification, and
        # (with the text) the grounding evidence, all from one batched forward with the frame.
        dets, crops = [], []
        for d in np.flatnonzero(scores >= self.settings.track_low_score):
            c = crop(rgb, boxes[d])  # the crop extraction trains on
            if c is not None:
                dets.append(int(d))
                crops.append(c)
        # For a checkpoint trained on text-conditioned holistic features, the frame's features
        # with the query come from the same vision pass.
        condition = self.query if self.holistic_text and self.query and self.referring else None
        enc = self.backbone.encode_images([rgb, *crops], condition_first=condition)
        feats = enc.features.cpu().numpy()
        holistic = feats[0] if condition is None else enc.first_conditioned.cpu().numpy()
        det_feats = dict(zip(dets, feats[1:], strict=True))
        tracks = self.tracker.update(boxes, scores, ext_ids, self.appearance(rgb, boxes, det_feats), stamp_ns)
        seen = {t.track_id: t.detection for t in tracks if t.missed == 0 and t.detection in det_feats}
        sims = {}
        if self._text_emb is not None and seen:
            row = {d: i for i, d in enumerate(dets, start=1)}  # detection -> its row in the batch
            rows = [row[d] for d in seen.values()]
            s = self.backbone.similarity(enc.joint[rows], self._text_emb.to(enc.joint.device)).cpu().numpy()
            sims = dict(zip(seen, s.tolist(), strict=True))
        partial = {tid: det_feats[d] for tid, d in seen.items()}
        return self.step(stamp_ns, tracks, holistic, partial, sims)

    def appearance(self, rgb: np.ndarray, boxes: np.ndarray, det_feats: dict) -> list | None:
        """The tracker's appearance descriptor per detection (``reid_appearance``)."""
        kind = self.settings.reid_appearance
        if kind == "color":
            return color_descriptors(rgb, boxes)
        if kind == "backbone":
            return [det_feats.get(d) for d in range(len(boxes))]
        return None

    def sanitize(self, boxes, scores, ext_ids=None):
        """One frame's boxes made safe: finite, non-empty, at most max_boxes (highest scores)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            scores = np.ones(len(boxes))
        sane = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & np.isfinite(scores)
        if not sane.all():  # NaN/inf or empty boxes from a detector or the persons topic are dropped
            self.dropped_boxes += int((~sane).sum())
            boxes, scores = boxes[sane], scores[sane]
            ext_ids = None if ext_ids is None else [e for e, ok in zip(ext_ids, sane, strict=True) if ok]
        if len(boxes) > self.settings.max_boxes:  # bounded work and memory whatever a detector or topic sends
            keep = np.argsort(-scores, kind="stable")[: self.settings.max_boxes]
            self.dropped_boxes += len(boxes) - len(keep)
            boxes, scores = boxes[keep], scores[keep]
            ext_ids = None if ext_ids is None else [ext_ids[i] for i in keep]
        return boxes, scores, ext_ids

    def track(self, boxes, scores, ext_ids=None, stamp_ns: int = 0) -> list[Track]:
        """Sanitise one frame's boxes and update the tracker, without appearance (replays of
        recorded boxes)."""
        boxes, scores, ext_ids = self.sanitize(boxes, scores, ext_ids)
        return self.tracker.update(boxes, scores, ext_ids, None, stamp_ns)

    def step(self, stamp_ns: int, tracks: list[Track], holistic, partial: dict, sims: dict) -> FrameResult:
        """Everything after the backbone for one sampled frame: ``partial`` maps the ids of tracks
        seen this frame to their crop features, ``sims`` to their text similarities."""
        self.k += 1
        k = self.k
        self.boxes.update({t.track_id: t.box for t in tracks})
        target = None
        if self._text_emb is not None:
            target = self.grounder.update(sims, live=[t.track_id for t in tracks])
        outputs = self._closed(
            self.segmenter.add_frame(k, stamp_ns, holistic, {t.track_id: partial.get(t.track_id) for t in tracks})
        )  # tracks lost
        if self.referring and target != self.last_target and self.last_target is not None:
            outputs += self._closed(self.segmenter.close([self.last_target]))  # the target switched
        self.last_target = target
        # Inference for persons seen in this frame: a lost person's buffer keeps its place (the
        # missing frames masked) until they come back or the tracker drops them.
        seen = [t for t in tracks if t.missed == 0]
        todo = seen[: self.settings.max_persons] if not self.referring else [t for t in seen if t.track_id == target]
        inference_ms = None
        # Everyone mode may spread persons over the hop (inference_phases); the one target of
        # referring mode keeps the plain schedule (the offline streaming evaluation's).
        due = [
            t.track_id
            for t in todo
            if self.segmenter.due(k, 0 if self.referring else t.track_id) and self.segmenter.ready(t.track_id)
        ]
        if due:
            t0 = time.perf_counter()
            outputs += [self._output(o) for o in self.segmenter.infer(due)]
            inference_ms = (time.perf_counter() - t0) * 1e3
        live = {t.track_id for t in tracks}
        self.boxes = {tid: b for tid, b in self.boxes.items() if tid in live}
        return FrameResult(stamp_ns, tracks, target, dict(self.grounder.scores), outputs, inference_ms)

    def _output(self, o: WindowOutput) -> PersonOutput:
        referring = self.referring  # everyone mode: query empty, confidence 0
        return PersonOutput(
            person_id=o.person_id,
            query=self.query if referring else "",
            grounding_confidence=self.grounder.confidence(o.person_id) if referring else 0.0,
            box=self.boxes.get(o.person_id, (0.0, 0.0, 0.0, 0.0)),
            window_start_ns=o.window_start_ns,
            window_end_ns=o.window_end_ns,
            segments=o.segments,
            closed=o.closed,
        )

    def _closed(self, outs: list[WindowOutput]) -> list[PersonOutput]:
        return [self._output(o) for o in outs]
