"""Grounding a referring text to one person track, stable over time.

Per track, the text-crop similarity (cosine in [-1, 1], from the backbone) is mapped to [0, 1]
and averaged over the track's last ``grounding_window`` sampled frames. Who a person is does not
change within a window; how their crop looks does: a person lying on the floor or bending gives a
squashed, unusual crop whose similarity to "the tall person in the red shirt" drops for a few
seconds (measured on the demo clip: 0.64 upright, 0.24 lying). The earlier exponential moving
average (weight 0.3 on the newest frame, a memory of about 3 frames) let those few frames
outweigh the whole track's history and moved the target to another person; a mean over the
window keeps the evidence of every frame the person was seen.

The target switches only when another track beats the current one by ``switch_margin`` for
``switch_frames`` consecutive sampled frames (hysteresis), and a target is chosen at all only
above ``min_score``. The node's grounding_* parameters are these fields (rhas_ros.core.settings).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class GroundingConfig:
    window: int = 256  # sampled frames averaged into a track's score (51 s at 5 fps: a pose lasts seconds)
    min_score: float = 0.0  # a target is chosen only at or above this score
    switch_margin: float = 0.05  # a challenger must beat the target by this much ...
    switch_frames: int = 3  # ... for this many consecutive sampled frames


class Grounder:
    def __init__(self, cfg: GroundingConfig | None = None):
        self.cfg = cfg or GroundingConfig()  # replaced as a whole when parameters change
        self.reset()

    def reset(self) -> None:
        self._history: dict[int, deque[float]] = {}
        self.scores: dict[int, float] = {}
        self.target: int | None = None
        self._challenger: int | None = None
        self._streak = 0

    def update(self, similarities: dict[int, float], live=None) -> int | None:
        """similarities: track id -> cosine similarity this frame (tracks seen this frame); live:
        the ids still tracked (a tracked person missed for a frame keeps their score; default:
        the ids in similarities). Returns the target id or None."""
        cfg = self.cfg
        for tid, sim in similarities.items():
            h = self._history.get(tid)
            if h is None or h.maxlen != cfg.window:
                h = self._history[tid] = deque(h or (), maxlen=cfg.window)
            h.append((float(sim) + 1) / 2)
            self.scores[tid] = sum(h) / len(h)
        live = set(similarities) if live is None else set(live)
        for tid in list(self.scores):
            if tid not in live:  # track gone
                del self.scores[tid]
                self._history.pop(tid, None)
        if not self.scores:
            self.target = None
            return None
        best = max(self.scores, key=self.scores.get)
        if self.target not in self.scores:
            self.target = best if self.scores[best] >= cfg.min_score else None
            self._challenger, self._streak = None, 0
        elif best != self.target and self.scores[best] > self.scores[self.target] + cfg.switch_margin:
            self._streak = self._streak + 1 if best == self._challenger else 1
            self._challenger = best
            if self._streak >= cfg.switch_frames:
                self.target, self._challenger, self._streak = best, None, 0
        else:
            self._challenger, self._streak = None, 0
        return self.target

    def confidence(self, tid: int | None) -> float:
        return 0.0 if tid is None else self.scores.get(tid, 0.0)
