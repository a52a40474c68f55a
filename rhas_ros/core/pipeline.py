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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hopadiff.frames import crop
from hopadiff.streaming import Segment, Segmenter, WindowOutput

from .appearance import color_descriptors
from .grounding import Grounder
from .intake import clean_query
from .resolve import NodeConfig, TrainedWith, resolve
from .settings import Settings, check
from .tracking import Detections, PersonTracker, Track


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
    def __init__(self, model, backbone, detector, config: NodeConfig, track_ids=None, segment_ids=None):
        """``config`` from ``resolve`` (``from_checkpoint`` loads everything and resolves it). With a
        checkpoint trained on holistic features conditioned on the referring text
        (``config.trained.holistic_text``) the frame is encoded with the active query, and a new
        query restarts the windows. ``track_ids``, ``segment_ids``: where new track and segment ids
        come from (``PersonTracker``, hopadiff's ``Segmenter``; default: never reused in the process)."""
        self.model, self.backbone, self.detector, self.config = model, backbone, detector, config
        self.labels = list(config.trained.labels)
        self.segmenter = Segmenter(model, len(self.labels), config.stream, segment_ids=segment_ids)
        self.tracker = PersonTracker(config.tracker, track_ids)
        self.grounder = Grounder(config.grounding)
        self.query = ""
        self._text_emb = None
        self.dropped_boxes = 0
        self.k = -1
        self.last_target: int | None = None
        self.boxes: dict[int, tuple] = {}  # last box per track (for closing messages)

    @classmethod
    def from_checkpoint(cls, settings: Settings, log=None, backbone=None, track_ids=None,
                        segment_ids=None) -> RhasPipeline:  # fmt: skip
        """Load the checkpoint, backbone and detector and resolve the settings against them: every
        check happens here, cheapest first (a wrong checkpoint or backbone fails in well under a
        second, before anything is loaded from disk or the hub). ``log(message)`` gets warnings;
        ``backbone``: one already built (benchmarks of published configurations with random
        weights), checked like a loaded one; ``track_ids``, ``segment_ids``: see ``__init__``."""
        import torch

        from hopadiff import load_checkpoint
        from hopadiff.features import load_backbone
        from hopadiff.runtime import prepare_for_inference

        from .detectors import make_detector

        s = settings
        check(s)  # the parameters on their own, before any file is read
        if s.torch_threads > 0:
            torch.set_num_threads(s.torch_threads)
        model, cfg, labels, _ = load_checkpoint(s.checkpoint)
        config = resolve(s, TrainedWith.of(s.checkpoint, cfg, labels))
        trained = config.trained
        if trained.backbone and trained.backbone != s.backbone:
            raise ValueError(f"{s.checkpoint} was trained on {trained.backbone} features; parameter backbone is "
                             f"{s.backbone!r}")  # fmt: skip
        if backbone is None:
            backbone = load_backbone(s.backbone, s.backbone_model or None, s.device, s.precision, s.local_files_only)
        if trained.feature_dim != backbone.feature_dim:
            raise ValueError(f"{s.checkpoint}: trained on {trained.feature_dim}-dim features, the backbone gives "
                             f"{backbone.feature_dim}")  # fmt: skip
        if trained.holistic_text and not backbone.conditions_on_text:
            raise ValueError(
                f"{s.checkpoint} was trained on holistic features conditioned on the referring text, "
                f"which the {s.backbone} backbone cannot compute (use blip2)"
            )
        for message in config.warnings:  # allowed (the model is convolutional in time), worth a warning
            if log is not None:
                log(message)
        engines = Path(s.checkpoint).with_name(Path(s.checkpoint).name + ".engines")  # beside the checkpoint
        model = prepare_for_inference(model, s.device, s.precision, s.inference_engine, engines, log or print)
        if s.inference_engine != "eager":  # compile / export now, not on the first live window
            model.warm_up(config.stream.window, (1, 2) if s.segment_all_persons else (1,))
            if log is not None:
                log(f"inference engine: {model.engine_report}")
        detector = make_detector(s.detector, s.detector_model, str(backbone.device), s.local_files_only, s.hog_upscale,
                                 s.hog_max_side)  # fmt: skip
        return cls(model, backbone, detector, config, track_ids, segment_ids)

    def resolve(self, settings: Settings) -> NodeConfig:
        """New parameter values resolved against this pipeline's checkpoint (ValueError: refused)."""
        return resolve(settings, self.config.trained)

    def apply(self, config: NodeConfig) -> None:
        """Run with ``config`` from the next frame on (from ``resolve``: the dynamic parameters)."""
        self.segmenter.apply(config.stream)
        self.tracker.params = config.tracker
        self.grounder.cfg = config.grounding
        self.config = config

    @property
    def referring(self) -> bool:
        return self.config.referring

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
        text, _ = clean_query(text, self.config.settings.max_text_chars)
        closed = []
        if text != self.query:
            if self.referring:
                closed = self.close_all()
            self.grounder.reset()
            self.last_target = None
            if self.config.trained.holistic_text:  # the buffered holistic features belong to the old text
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
        dets = self.sanitize(boxes, scores, ext_ids)
        boxes, scores = dets.boxes, dets.scores
        # Every detection the tracker may use is encoded before tracking: the crop features are
        # HopaDIFF's person-specific input, the tracker's appearance for re-identification, and
        # (with the text) the grounding evidence, all from one batched forward with the frame.
        encoded, crops = [], []  # detection indices, their crops
        for d in np.flatnonzero(scores >= self.config.tracker.low_score):
            c = crop(rgb, boxes[d])  # the crop extraction trains on
            if c is not None:
                encoded.append(int(d))
                crops.append(c)
        # For a checkpoint trained on text-conditioned holistic features, the frame's features
        # with the query come from the same vision pass.
        condition = self.query if self.config.trained.holistic_text and self.query and self.referring else None
        enc = self.backbone.encode_images([rgb, *crops], condition_first=condition)
        feats = enc.features.cpu().numpy()
        holistic = feats[0] if condition is None else enc.first_conditioned.cpu().numpy()
        det_feats = dict(zip(encoded, feats[1:], strict=True))
        dets.embeddings = self.appearance(rgb, boxes, det_feats)
        tracks = self.tracker.update(dets, stamp_ns)
        seen = {t.track_id: t.detection for t in tracks if t.seen and t.detection in det_feats}
        sims = {}
        if self._text_emb is not None and seen:
            row = {d: i for i, d in enumerate(encoded, start=1)}  # detection -> its row in the batch
            rows = [row[d] for d in seen.values()]
            s = self.backbone.similarity(enc.joint[rows], self._text_emb.to(enc.joint.device)).cpu().numpy()
            sims = dict(zip(seen, s.tolist(), strict=True))
        partial = {tid: det_feats[d] for tid, d in seen.items()}
        return self.step(stamp_ns, tracks, holistic, partial, sims)

    def appearance(self, rgb: np.ndarray, boxes: np.ndarray, det_feats: dict) -> list | None:
        """The tracker's appearance descriptor per detection (``reid_appearance``)."""
        kind = self.config.settings.reid_appearance
        if kind == "color":
            return color_descriptors(rgb, boxes)
        if kind == "backbone":
            return [det_feats.get(d) for d in range(len(boxes))]
        return None

    def sanitize(self, boxes, scores, ext_ids=None) -> Detections:
        """One frame's boxes made safe (``Detections.sanitized``); what is dropped is counted."""
        dets, dropped = Detections.sanitized(boxes, scores, ext_ids, self.config.settings.max_boxes)
        self.dropped_boxes += dropped
        return dets

    def track(self, boxes, scores, ext_ids=None, stamp_ns: int = 0) -> list[Track]:
        """Sanitise one frame's boxes and update the tracker, without appearance (replays of
        recorded boxes)."""
        return self.tracker.update(self.sanitize(boxes, scores, ext_ids), stamp_ns)

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
        seen = [t for t in tracks if t.seen]
        todo = (
            seen[: self.config.settings.max_persons]
            if not self.referring
            else [t for t in seen if t.track_id == target]
        )
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
