"""The node's per-frame work, free of ROS: detect -> track -> ground -> encode -> buffer ->
HopaDIFF every hop frames -> stitch. The node feeds it decoded frames from its worker thread.

Buffers: one ring of W holistic features (shared by all persons) and, per tracked person,
a ring of W (partial feature, visible) aligned to the same sampled frames. In referring
mode every track is buffered (its crop is encoded for grounding anyway), so a change of
target has a full window at once; inference runs only for the target. In everyone mode all
tracks (up to max_persons) are segmented, batched into one forward pass per window length.
"""

from __future__ import annotations

import time
import unicodedata
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from .grounding import Grounder, GroundingConfig
from .stitching import Segment, SegmentStitcher
from .tracker import IouTracker, Track


@dataclass
class PipelineConfig:
    window: int = 256  # W sampled frames per inference window
    hop: int = 32  # run HopaDIFF every `hop` sampled frames
    min_window_frames: int = 16  # start inferring once a person has this many frames
    steps: int | None = None  # DDIM steps (None: checkpoint config)
    eta: float = 0.0  # 0: deterministic (no flicker)
    seed: int = 0  # start noise seed, the same for every window
    segment_all_persons: bool = False  # everyone mode
    max_persons: int = 8
    threshold: float = 0.5  # multi-label activity threshold
    at_least_one: bool = True  # multi-label: the most probable class is active on every frame
    smooth: int = 1  # median filter length along time (frames)
    max_text_chars: int = 512
    max_boxes: int = 64  # boxes kept per frame (highest scores first); the rest are counted in dropped_boxes
    min_box_pixels: int = 4
    tracker_min_iou: float = 0.3
    tracker_max_age: int = 10
    # The checkpoint was trained on holistic features conditioned on the referring text: the
    # frame is encoded with the active query (referring mode), and a new query restarts the windows.
    holistic_text: bool = False
    grounding: GroundingConfig = field(default_factory=GroundingConfig)


@dataclass
class PersonOutput:
    person_id: int
    query: str
    grounding_confidence: float
    box: tuple[float, float, float, float]
    window_start_ns: int
    window_end_ns: int
    segments: list[Segment]  # with start_ns / end_ns camera stamps


@dataclass
class FrameResult:
    stamp_ns: int
    tracks: list[Track]
    target_id: int | None
    scores: dict[int, float]
    outputs: list[PersonOutput]
    inference_ms: float | None


class PersonBuffer:
    def __init__(self, window: int):
        self.ks: deque[int] = deque(maxlen=window)
        self.partial: deque[np.ndarray] = deque(maxlen=window)
        self.visible: deque[bool] = deque(maxlen=window)


class RhasPipeline:
    def __init__(self, model, labels: list[str], backbone, detector, cfg: PipelineConfig):
        self.model, self.labels, self.backbone, self.detector, self.cfg = model, labels, backbone, detector, cfg
        self.device = next(model.parameters()).device
        self.multi_label = model.cfg.multi_label
        self.tracker = IouTracker(cfg.tracker_min_iou, cfg.tracker_max_age, max_tracks=cfg.max_boxes)
        self.grounder = Grounder(cfg.grounding)
        self.query = ""
        self._text_emb = None
        self.dropped_boxes = 0
        self.reset()

    def apply_settings(self, overrides: dict) -> None:
        """Change settings that take effect at once (the node's dynamic parameters)."""
        for name, value in overrides.items():
            setattr(self.cfg, name, value)
        self.grounder.cfg = self.cfg.grounding

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all buffers and tracks (e.g. when stamps jump backwards: a bag loop)."""
        self.tracker.reset()
        self.grounder.reset()
        self.k = -1
        self.hol_ks: deque[int] = deque(maxlen=self.cfg.window)
        self.holistic: deque[np.ndarray] = deque(maxlen=self.cfg.window)
        self.stamps: dict[int, int] = {}
        self.persons: dict[int, PersonBuffer] = {}
        self.stitchers: dict[int, SegmentStitcher] = {}

    def set_query(self, text: str) -> str:
        """Set (or, with an empty string, clear) the referring text; returns the text in use."""
        # Control and format characters (ESC sequences, zero-width marks) never reach the query
        # that is republished; whitespace runs become one space.
        text = "".join(ch for ch in str(text) if unicodedata.category(ch)[0] != "C" or ch.isspace())
        text = " ".join(text.split())[: self.cfg.max_text_chars]
        if text != self.query:
            self.grounder.reset()
            if self.cfg.holistic_text:  # the buffered holistic features belong to the old text
                self.hol_ks.clear()
                self.holistic.clear()
                self.persons.clear()
        self.query = text
        self._text_emb = self.backbone.encode_texts([text])[0] if text else None
        return text

    def memory_frames(self) -> int:
        return len(self.holistic) + sum(len(p.ks) for p in self.persons.values())

    # ------------------------------------------------------------------ per frame
    def process(self, rgb: np.ndarray, stamp_ns: int, persons=None) -> FrameResult:
        """One sampled frame. ``persons``: (boxes (N,4) xywh, scores, external ids) for the external detector."""
        self.k += 1
        k = self.k
        if persons is not None:
            boxes, scores, ext_ids = persons
        elif self.detector is not None:
            boxes, scores = self.detector.detect(rgb)
            ext_ids = None
        else:
            boxes, scores, ext_ids = np.zeros((0, 4)), np.zeros(0), None
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(boxes):
            scores = np.ones(len(boxes))
        sane = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & np.isfinite(scores)
        if not sane.all():  # NaN/inf or empty boxes from a detector or the persons topic are dropped
            self.dropped_boxes += int((~sane).sum())
            boxes, scores = boxes[sane], scores[sane]
            ext_ids = None if ext_ids is None else [e for e, ok in zip(ext_ids, sane, strict=True) if ok]
        if len(boxes) > self.cfg.max_boxes:  # bounded work and memory whatever a detector or topic sends
            keep = np.argsort(-np.asarray(scores), kind="stable")[: self.cfg.max_boxes]
            self.dropped_boxes += len(boxes) - len(keep)
            boxes, scores = np.asarray(boxes)[keep], np.asarray(scores)[keep]
            ext_ids = None if ext_ids is None else [ext_ids[i] for i in keep]
        tracks = self.tracker.update(boxes, scores, ext_ids)
        seen = [t for t in tracks if t.missed == 0]
        crops, crop_ids = [], []
        H, W = rgb.shape[:2]
        for t in seen:
            x, y, w, h = (round(v) for v in t.box)
            x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
            if x1 - x0 >= self.cfg.min_box_pixels and y1 - y0 >= self.cfg.min_box_pixels:
                crops.append(rgb[y0:y1, x0:x1])
                crop_ids.append(t.track_id)
        enc = self.backbone.encode_images([rgb, *crops])  # one batched forward: frame + crops
        feats = enc.features.cpu().numpy()
        holistic = feats[0]
        if self.cfg.holistic_text and self.query and not self.cfg.segment_all_persons:
            holistic = self.backbone.encode_images([rgb], self.query).features.cpu().numpy()[0]
        self.hol_ks.append(k)
        self.holistic.append(holistic)
        self.stamps[k] = stamp_ns
        partial = dict(zip(crop_ids, feats[1:], strict=True))

        target = None
        sims = {}
        if self._text_emb is not None and crop_ids:
            s = self.backbone.similarity(enc.joint[1:], self._text_emb.to(enc.joint.device)).cpu().numpy()
            sims = dict(zip(crop_ids, s.tolist(), strict=True))
        if self._text_emb is not None:
            target = self.grounder.update(sims)

        live = {t.track_id for t in tracks}
        D = feats.shape[1]
        for t in tracks:
            buf = self.persons.setdefault(t.track_id, PersonBuffer(self.cfg.window))
            buf.ks.append(k)
            buf.partial.append(partial.get(t.track_id, np.zeros(D, np.float32)))
            buf.visible.append(t.track_id in partial)
        outputs = self._finish_gone(live)
        for tid in [tid for tid in self.persons if tid not in live]:
            del self.persons[tid]

        if self.cfg.segment_all_persons:
            todo = tracks[: self.cfg.max_persons]
        else:
            todo = [t for t in tracks if t.track_id == target]
        inference_ms = None
        if k % self.cfg.hop == 0:
            ready = [
                t for t in todo if len(self.persons[t.track_id].ks) >= min(self.cfg.min_window_frames, self.cfg.window)
            ]
            if ready:
                t0 = time.perf_counter()
                outputs += self._infer(ready)
                inference_ms = (time.perf_counter() - t0) * 1e3
        oldest = self.hol_ks[0]
        for kk in [kk for kk in self.stamps if kk < oldest]:
            del self.stamps[kk]
        return FrameResult(stamp_ns, tracks, target, dict(self.grounder.scores), outputs, inference_ms)

    # ------------------------------------------------------------------ inference
    def _window(self, tid: int):
        buf = self.persons[tid]
        n = len(buf.ks)
        hol = np.stack(list(self.holistic)[-n:])  # aligned: the person buffer holds the last n frames
        assert list(self.hol_ks)[-n:] == list(buf.ks), "person buffer out of step with the frame ring"
        return hol, np.stack(buf.partial), np.array(buf.visible), list(buf.ks)

    def _infer(self, ready: list[Track]) -> list[PersonOutput]:
        groups: dict[int, list] = {}
        for t in ready:
            groups.setdefault(len(self.persons[t.track_id].ks), []).append(t)
        outputs = []
        for _, group in sorted(groups.items()):
            wins = [self._window(t.track_id) for t in group]
            hol = torch.from_numpy(np.stack([w[0].T for w in wins])).to(self.device)
            par = torch.from_numpy(np.stack([w[1].T for w in wins])).to(self.device)
            vis = torch.from_numpy(np.stack([w[2] for w in wins])).to(self.device)
            gen = torch.Generator(self.device).manual_seed(self.cfg.seed)
            probs = self.model.predict(hol, par, vis, steps=self.cfg.steps, eta=self.cfg.eta, generator=gen)
            probs = probs.float().cpu().numpy()
            for t, w, p in zip(group, wins, probs, strict=True):
                ks = w[3]
                st = self.stitchers.setdefault(
                    t.track_id,
                    SegmentStitcher(
                        len(self.labels), self.multi_label, self.cfg.threshold, self.cfg.smooth, self.cfg.at_least_one
                    ),
                )
                segs = st.add_window(ks, [self.stamps[x] for x in ks], p)
                outputs.append(self._output(t, ks, segs))
        return outputs

    def _output(self, t: Track, ks, segs) -> PersonOutput:
        referring = not self.cfg.segment_all_persons  # everyone mode: query empty, confidence 0
        return PersonOutput(
            person_id=t.track_id,
            query=self.query if referring else "",
            grounding_confidence=self.grounder.confidence(t.track_id) if referring else 0.0,
            box=t.box,
            window_start_ns=self.stamps[ks[0]],
            window_end_ns=self.stamps[ks[-1]],
            segments=segs,
        )

    def _finish_gone(self, live: set[int]) -> list[PersonOutput]:
        """Tracks that disappeared: publish their open segments once more as FINAL."""
        outputs = []
        for tid in [tid for tid in self.stitchers if tid not in live]:
            done = self.stitchers.pop(tid).finish()
            if done:
                start, end = min(s.start_ns for s in done), max(s.end_ns for s in done)
                outputs.append(PersonOutput(tid, "", 0.0, (0.0, 0.0, 0.0, 0.0), start, end, done))
        return outputs
