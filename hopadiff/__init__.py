"""HopaDIFF: holistic-partial aware Fourier-conditioned diffusion for referring human action
segmentation (Peng et al., NeurIPS 2025), as a plain PyTorch module. Never imports ROS."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Config, ConfigError, ModelConfig, load_config, read_label_names, save_config
from .model import HopaDIFF

__all__ = [
    "CheckpointError",
    "Config",
    "ConfigError",
    "HopaDIFF",
    "ModelConfig",
    "load_checkpoint",
    "load_config",
    "read_label_names",
    "save_checkpoint",
    "save_config",
]
