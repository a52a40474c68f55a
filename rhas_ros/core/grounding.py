"""Grounding a referring text to one person track, stable over time.

Per track, the text-crop similarity (cosine in [-1, 1], from the backbone) is mapped to
[0, 1] and accumulated with an exponential moving average. The target switches only when
another track beats the current one by ``switch_margin`` for ``switch_frames`` consecutive
sampled frames (hysteresis), and a target is chosen at all only above ``min_score``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GroundingConfig:
    ema: float = 0.3  # weight of the newest similarity
    min_score: float = 0.0  # accumulated score needed to select any target
    switch_margin: float = 0.05  # a challenger must beat the target by this much ...
    switch_frames: int = 3  # ... for this many consecutive sampled frames


class Grounder:
    def __init__(self, cfg: GroundingConfig | None = None):
        self.cfg = cfg or GroundingConfig()
        self.scores: dict[int, float] = {}
        self.target: int | None = None
        self._challenger: int | None = None
        self._streak = 0

    def reset(self) -> None:
        self.scores, self.target, self._challenger, self._streak = {}, None, None, 0

    def update(self, similarities: dict[int, float]) -> int | None:
        """similarities: track id -> cosine similarity this frame. Returns the target id or None."""
        a = self.cfg.ema
        for tid, sim in similarities.items():
            s = (float(sim) + 1) / 2
            self.scores[tid] = s if tid not in self.scores else (1 - a) * self.scores[tid] + a * s
        for tid in list(self.scores):
            if tid not in similarities:
                del self.scores[tid]  # track gone
        if not self.scores:
            self.target = None
            return None
        best = max(self.scores, key=self.scores.get)
        if self.target not in self.scores:
            self.target = best if self.scores[best] >= self.cfg.min_score else None
            self._challenger, self._streak = None, 0
        elif best != self.target and self.scores[best] > self.scores[self.target] + self.cfg.switch_margin:
            self._streak = self._streak + 1 if best == self._challenger else 1
            self._challenger = best
            if self._streak >= self.cfg.switch_frames:
                self.target, self._challenger, self._streak = best, None, 0
        else:
            self._challenger, self._streak = None, 0
        return self.target

    def confidence(self, tid: int | None) -> float:
        return 0.0 if tid is None else self.scores.get(tid, 0.0)
