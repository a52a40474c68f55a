"""The node's parameters resolved against the checkpoint, once, into one frozen value.

``Settings`` are the parameters as set ("0 = the checkpoint's value"); ``TrainedWith`` is what
the checkpoint says (read from its stored config, no weights needed); ``resolve`` checks both
together and returns a ``NodeConfig``: every value final, and the small frozen configs the
pipeline's parts take (tracker, grounder, segmenter). Configure and a runtime parameter change
go through the same function, so a value configure would refuse is refused at runtime too, with
the same reason, and a refused change changes nothing. ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hopadiff.streaming import StreamConfig

from .grounding import GroundingConfig
from .settings import Settings, check, part, tracker_params
from .tracking import TrackerParams


@dataclass(frozen=True)
class TrainedWith:
    """What a checkpoint was trained with, as far as the node cares."""

    path: str
    labels: tuple[str, ...]
    multi_label: bool
    feature_dim: int
    window: int  # the training window: the node's default W
    hop: int
    sample_fps: float
    sampling_steps: int  # DDIM steps of its config
    train_timesteps: int  # the diffusion schedule's length: the most DDIM steps it can run
    backbone: str = ""  # the features' backbone ('' when the checkpoint does not say)
    holistic_text: bool = False  # holistic features conditioned on the referring text (BLIP-2 ITM)

    @classmethod
    def of(cls, path, cfg, labels) -> TrainedWith:
        """From a checkpoint's stored hopadiff Config and label names."""
        d, m = cfg.data, cfg.model
        return cls(
            str(path), tuple(labels), m.multi_label, m.feature_dim, d.window, d.hop, d.sample_fps,
            m.diffusion.sampling_steps, m.diffusion.num_train_timesteps, d.backbone, d.holistic_text,
        )  # fmt: skip


@dataclass(frozen=True)
class NodeConfig:
    """Settings resolved against a checkpoint: what the pipeline runs."""

    settings: Settings  # the parameters as set
    trained: TrainedWith
    sample_fps: float  # frames per second kept from the camera
    stream: StreamConfig  # the segmenter's (window, hop, DDIM steps resolved)
    tracker: TrackerParams
    grounding: GroundingConfig
    warnings: tuple[str, ...] = field(default=(), compare=False)  # values that differ from training

    @property
    def referring(self) -> bool:
        return not self.settings.segment_all_persons


def resolve(s: Settings, trained: TrainedWith) -> NodeConfig:
    """ValueError naming the parameter when a value, or two together, cannot run with this checkpoint."""
    check(s)
    window, hop = s.window or trained.window, s.hop or trained.hop
    sample_fps = s.sample_fps or trained.sample_fps
    steps = s.ddim_steps or trained.sampling_steps
    if hop > window:
        raise ValueError(f"parameter hop={hop} is larger than window={window}")
    if window < 2:
        raise ValueError(f"parameter window={window}: a window needs at least 2 frames")
    if not 1 <= steps <= trained.train_timesteps:
        raise ValueError(
            f"parameter ddim_steps={steps} must be in 1..{trained.train_timesteps} (the diffusion steps "
            f"{trained.path} was trained with)"
        )
    if sample_fps <= 0:
        raise ValueError(f"parameter sample_fps: {trained.path} stores no frame rate; set sample_fps > 0")
    warnings = tuple(
        f"parameter {name}={value} differs from the checkpoint's training value {want}"
        for name, value, want in (("window", s.window, trained.window), ("hop", s.hop, trained.hop),
                                  ("sample_fps", s.sample_fps, trained.sample_fps))
        if value and value != want
    )  # fmt: skip
    return NodeConfig(
        settings=s,
        trained=trained,
        sample_fps=float(sample_fps),
        stream=part(StreamConfig, s, window=window, hop=hop, ddim_steps=steps),
        tracker=tracker_params(s),
        grounding=part(GroundingConfig, s),
        warnings=warnings,
    )
