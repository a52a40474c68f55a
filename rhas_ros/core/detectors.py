"""Person detectors selectable by the ``detector`` parameter. All return boxes (N, 4) as
(x, y, w, h) pixels and scores (N,) for an RGB uint8 frame.

  hog            OpenCV's built-in HOG people detector (no download; works on upright people)
  full_frame     the whole frame is one person (a camera that follows one person)
  grounding_dino text-prompted detection through transformers (the paper's detector)
  external       boxes come from the ``persons`` topic (an upstream detector/tracker)
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .tracking.matching import clip_to_image

DETECTORS = ("hog", "full_frame", "grounding_dino", "external")


class HogDetector:
    """OpenCV's HOG + linear SVM people detector (Dalal & Triggs), tuned on real footage (OpenCV's
    vtest.avi, a hall at 768x576; scripts/bench_tracking.py):

    - ``upscale`` 1.3: the detector's window is 64x128, so people shorter than 128 px are never
      found; at 1.3x people from 98 px up are (vtest: 2.5 -> 5.0 persons detected per frame,
      median cost 104 -> 200 ms per frame on 2 CPU cores). 1.0 keeps the frame as it is.
    - every window above the SVM's zero margin is kept (``groupThreshold=0``) and overlapping
      windows are suppressed by OpenCV's non-maximum suppression (``cv2.dnn.NMSBoxes``, IoU
      ``nms_iou``) keeping the strongest; OpenCV's default grouping instead drops every person
      fewer than three windows agree on, which is most partly occluded ones, and averages the
      margins away.
    - the SVM margin w becomes a score in [0, 1) by 1 - exp(-w) (0.5 at w = 0.69, 0.9 at
      w = 2.3), so the tracker's high/low score stages (ByteTrack) see weak windows as weak
      detections instead of dropping them.
    - ``max_side`` 1280: a larger frame is shrunk to it (its longer side) before ``upscale``; the
      cost grows with the pixels (a 4096x4096 frame took ~8 s on 2 cores, the node's whole frame
      budget many times over) and a person in such a frame is hundreds of pixels tall anyway.
    """

    WINDOW = (64, 128)  # (w, h) of OpenCV's people detector window
    SCALE, MAX_LEVELS = 1.05, 64  # the image pyramid: OpenCV's detectMultiScale defaults

    def __init__(self, upscale: float = 1.3, nms_iou: float = 0.4, min_score: float = 0.05, max_side: int = 1280):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())
        self.upscale, self.nms_iou, self.min_score, self.max_side = upscale, nms_iou, min_score, max_side
        self._pool = ThreadPoolExecutor(max(1, cv2.getNumThreads()), thread_name_prefix="hog")
        self.input_size: tuple[int, int] | None = None  # (w, h) of the last image searched (/diagnostics)

    def detect(self, rgb: np.ndarray):
        side = max(rgb.shape[:2])
        f = self.upscale * (min(1.0, self.max_side / side) if self.max_side > 0 and side else 1.0)
        interpolation = cv2.INTER_LINEAR if f >= 1.0 else cv2.INTER_AREA
        img = cv2.resize(rgb, None, fx=f, fy=f, interpolation=interpolation) if f != 1.0 else rgb
        self.input_size = (img.shape[1], img.shape[0])
        # OpenCV's HOG corrupted the heap on images smaller than its window (detectMultiScale, seen
        # with 1x1 and 20x20 frames): they are padded to the window size; boxes stay in frame coordinates.
        H, W = img.shape[:2]
        min_w, min_h = self.WINDOW
        if min_h > H or min_w > W:
            img = cv2.copyMakeBorder(img, 0, max(0, min_h - H), 0, max(0, min_w - W), cv2.BORDER_CONSTANT, value=0)
        rects, margins = self._windows(img)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        boxes = rects / f
        scores = 1.0 - np.exp(-np.clip(margins, 0, None))
        # The levels' windows come in level order: sorted here (score, then position), NMS breaks
        # ties the same way every run, so the same frame gives the same boxes.
        order = np.lexsort((*boxes.T[::-1], -scores))
        boxes, scores = boxes[order], scores[order]
        # NMSBoxes returns an empty tuple (not an empty int array) when no window reaches min_score:
        # indices are made integers whatever it returns (a float empty array cannot index).
        kept = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.min_score, self.nms_iou)
        keep = np.asarray(kept, dtype=np.intp).reshape(-1)
        return boxes[keep], scores[keep]

    def _windows(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every window above the SVM's zero margin over the image pyramid -> (rects (N, 4) xywh
        in ``img``'s pixels, clipped to it; margins (N,)): what OpenCV's ``detectMultiScale``
        (scale 1.05, no grouping) returns, one ``HOGDescriptor.detect`` per pyramid level.

        Not ``detectMultiScale`` itself: its threads append a level's rectangles and that level's
        margins to the output in two separate locked sections, so under load another level's
        windows can come in between and a rectangle gets another window's margin (OpenCV
        4.x, objdetect/src/hog.cpp, HOGInvoker). Seen in test_bag: about one replay in ten of a
        40-frame recording on a loaded machine gave a person a box and a score from two windows.
        Here each level returns its own (rectangles, margins) pair; the levels run on ``_pool``
        (OpenCV releases the GIL), about as parallel as OpenCV's own threads (an 832x624 image:
        65 against 62 ms on 2 cores)."""
        H, W = img.shape[:2]
        levels, scale = [], 1.0
        while (
            len(levels) < self.MAX_LEVELS
            and np.rint(W / scale) >= self.WINDOW[0]
            and np.rint(H / scale) >= self.WINDOW[1]
        ):
            levels.append(scale)
            scale *= self.SCALE  # multiplied, as OpenCV does: the same doubles, the same level sizes
        parts = list(self._pool.map(lambda s: self._level(img, s), levels))
        if not parts:
            return np.zeros((0, 4)), np.zeros(0)
        rects, margins = np.concatenate([r for r, _ in parts]), np.concatenate([m for _, m in parts])
        return clip_to_image(rects, W, H), margins

    def _level(self, img: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """One pyramid level as OpenCV computes it: the image shrunk by ``scale`` (rounded to whole
        pixels, bit-exact bilinear), its windows mapped back (position and size x ``scale``, rounded)."""
        H, W = img.shape[:2]
        size = (int(np.rint(W / scale)), int(np.rint(H / scale)))
        level = img if size == (W, H) else cv2.resize(img, size, interpolation=cv2.INTER_LINEAR_EXACT)
        found, margins = self.hog.detect(level, hitThreshold=0, winStride=(8, 8), padding=(8, 8))
        found = np.asarray(found, dtype=np.float64).reshape(-1, 2)
        window = np.tile(np.rint(np.array(self.WINDOW) * scale), (len(found), 1))
        return np.c_[np.rint(found * scale), window], np.asarray(margins, dtype=np.float64).reshape(-1)


class FullFrameDetector:
    def detect(self, rgb: np.ndarray):
        return np.array([[0, 0, rgb.shape[1], rgb.shape[0]]], dtype=np.float64), np.ones(1)


class GroundingDinoDetector:
    """Zero-shot detection of "a person." with Grounding DINO (hub name or local folder)."""

    def __init__(
        self,
        name_or_path: str = "IDEA-Research/grounding-dino-tiny",
        device: str = "cpu",
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        local_files_only: bool = False,
    ):
        import torch
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.torch = torch
        self.processor = AutoProcessor.from_pretrained(name_or_path, local_files_only=local_files_only)
        self.model = AutoModelForZeroShotObjectDetection.from_pretrained(
            name_or_path, local_files_only=local_files_only
        )
        self.model.to(device).eval()
        self.device, self.box_threshold, self.text_threshold = device, box_threshold, text_threshold

    def detect(self, rgb: np.ndarray):
        inputs = self.processor(images=rgb, text="a person.", return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            out = self.model(**inputs)
        res = self.processor.post_process_grounded_object_detection(
            out,
            inputs["input_ids"],
            threshold=self.box_threshold,
            text_threshold=self.text_threshold,
            target_sizes=[rgb.shape[:2]],
        )[0]
        xyxy = res["boxes"].cpu().numpy().reshape(-1, 4)
        boxes = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        return boxes, res["scores"].cpu().numpy()


def make_detector(
    name: str, model: str = "", device: str = "cpu", local_files_only: bool = False, hog_upscale: float = 1.3,
    hog_max_side: int = 1280,
):  # fmt: skip
    """None for ``external`` (boxes arrive on a topic)."""
    if name == "hog":
        return HogDetector(upscale=hog_upscale, max_side=hog_max_side)
    if name == "full_frame":
        return FullFrameDetector()
    if name == "grounding_dino":
        return GroundingDinoDetector(
            model or "IDEA-Research/grounding-dino-tiny", device, local_files_only=local_files_only
        )
    if name == "external":
        return None
    raise ValueError(f"unknown detector {name!r}; allowed: {', '.join(DETECTORS)}")
