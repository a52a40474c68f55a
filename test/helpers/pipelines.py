"""The one builder of the node's core pipeline under test: the node's own resolution
(rhas_ros.core.resolve) of parameters against what a checkpoint would say, without a file."""

from __future__ import annotations

from rhas_ros.core.pipeline import RhasPipeline
from rhas_ros.core.resolve import TrainedWith, resolve
from rhas_ros.core.settings import Settings


def trained_with(model, labels, holistic_text: bool = False, window: int = 256, hop: int = 64, fps: float = 5.0):
    """What a checkpoint of ``model`` trained on ``labels`` would say (window/hop/fps: DataConfig's defaults)."""
    mc = model.cfg
    return TrainedWith("test.pt", tuple(labels), mc.multi_label, mc.feature_dim, window, hop, fps,
                       mc.diffusion.sampling_steps, mc.diffusion.num_train_timesteps, "", holistic_text)  # fmt: skip


def make_pipeline(model, labels=None, backbone=None, detector=None, *, holistic_text: bool = False, **params):
    """``RhasPipeline`` for ``model`` with the node parameters ``params`` (the rest at their defaults)."""
    labels = labels or [f"a{i}" for i in range(model.cfg.num_classes)]
    config = resolve(Settings(checkpoint="test.pt", **params), trained_with(model, labels, holistic_text))
    return RhasPipeline(model, backbone, detector, config)
