"""How a stream of sampled frames becomes published segments: one frozen value.

The ROS node resolves its parameters (rhas_ros.core.settings, where their descriptions, ranges
and dynamic flags live) against the checkpoint into this; ``hopadiff-eval --streaming`` builds
it from its command line. Nothing here knows about ROS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamConfig:
    window: int  # W: sampled frames per window (the node uses the checkpoint's training window by default)
    hop: int  # a window every hop sampled frames (hop <= window: every frame is covered)
    min_window_frames: int = 16  # a young track's first window once it has this many frames (W=256 at 5 fps
    # would otherwise take 51 s before the first output)
    inference_phases: int = 1  # everyone mode: persons spread over this many frames of each hop (1: one batch)
    ddim_steps: int | None = None  # None: the model config's sampling_steps (25, the seed's)
    eta: float = 0.0  # 0: deterministic DDIM; the same input gives the same output, so windows do not flicker
    seed: int = 0  # the start noise of every window (with eta 0 the only randomness)
    threshold: float = 0.5  # multi-label: a class is active at this probability
    at_least_one_action: bool = True  # multi-label: the most probable class is active on every frame too
    smooth: int = 5  # median filter length along time, sampled frames (1: off); 5 removes 1-2 frame blips
    warm_start: bool = True  # start a window's chain from the previous window's estimate, re-noised
    warm_start_steps: int = 6  # DDIM steps of a warm-started window (the last ones of the schedule)

    def __post_init__(self) -> None:
        rules = [
            ("window", self.window >= 1, ">= 1"),
            ("hop", 1 <= self.hop <= self.window, f"in 1..window ({self.window})"),
            ("min_window_frames", self.min_window_frames >= 1, ">= 1"),
            ("inference_phases", self.inference_phases >= 1, ">= 1"),
            ("ddim_steps", self.ddim_steps is None or self.ddim_steps >= 1, "None or >= 1"),
            ("eta", 0.0 <= self.eta <= 1.0, "in [0, 1]"),
            ("threshold", 0.0 <= self.threshold <= 1.0, "in [0, 1]"),
            ("smooth", self.smooth >= 1, ">= 1"),
            ("warm_start_steps", self.warm_start_steps >= 1, ">= 1"),
        ]
        for name, ok, allowed in rules:
            if not ok:
                raise ValueError(f"StreamConfig.{name}={getattr(self, name)!r} must be {allowed}")
