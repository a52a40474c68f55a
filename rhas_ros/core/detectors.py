"""Person detectors selectable by the ``detector`` parameter. All return boxes (N, 4) as
(x, y, w, h) pixels and scores (N,) for an RGB uint8 frame.

  hog            OpenCV's built-in HOG people detector (no download; works on upright people)
  full_frame     the whole frame is one person (a camera that follows one person)
  grounding_dino text-prompted detection through transformers (the paper's detector)
  external       boxes come from the ``persons`` topic (an upstream detector/tracker)
"""

from __future__ import annotations

import cv2
import numpy as np

DETECTORS = ("hog", "full_frame", "grounding_dino", "external")


class HogDetector:
    def __init__(self, min_score: float = 0.3):
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())
        self.min_score = min_score

    WINDOW = (64, 128)  # (w, h) of OpenCV's people detector window

    def detect(self, rgb: np.ndarray):
        # detectMultiScale corrupts the heap on images smaller than its window (OpenCV, seen
        # with 1x1 and 20x20 frames): pad them to the window size; boxes stay in frame coordinates.
        H, W = rgb.shape[:2]
        min_w, min_h = self.WINDOW
        if min_h > H or min_w > W:
            rgb = cv2.copyMakeBorder(rgb, 0, max(0, min_h - H), 0, max(0, min_w - W), cv2.BORDER_CONSTANT, value=0)
        rects, weights = self.hog.detectMultiScale(rgb, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        keep = weights >= self.min_score
        return np.asarray(rects, dtype=np.float64)[keep], np.clip(weights[keep], 0, 1)


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


def make_detector(name: str, model: str = "", device: str = "cpu", local_files_only: bool = False):
    """None for ``external`` (boxes arrive on a topic)."""
    if name == "hog":
        return HogDetector()
    if name == "full_frame":
        return FullFrameDetector()
    if name == "grounding_dino":
        return GroundingDinoDetector(
            model or "IDEA-Research/grounding-dino-tiny", device, local_files_only=local_files_only
        )
    if name == "external":
        return None
    raise ValueError(f"unknown detector {name!r}; allowed: {', '.join(DETECTORS)}")
