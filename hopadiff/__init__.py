"""HopaDIFF: holistic-partial aware Fourier-conditioned diffusion for referring human action
segmentation (Peng et al., NeurIPS 2025), as a plain PyTorch module. Never imports ROS.

The names below load on first use (PEP 562), so light submodules (``hopadiff.frames``,
``hopadiff.synth.vocab``) can be imported without torch.
"""

import importlib

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "Config": "config",
    "ConfigError": "config",
    "ModelConfig": "config",
    "load_config": "config",
    "read_label_names": "config",
    "save_config": "config",
    "HopaDIFF": "model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hopadiff' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__():
    return sorted([*globals(), *_EXPORTS])
