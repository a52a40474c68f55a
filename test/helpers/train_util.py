"""Helpers for the training / CLI tests: a tiny experiment config and CLI runners."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def tiny_experiment(path: Path, data_root: Path, out_dir: Path, feature_dim: int, num_classes: int, **train) -> Path:
    cfg = {
        "model": {
            "feature_dim": feature_dim,
            "num_classes": num_classes,
            "encoder": {
                "num_layers": 6,
                "num_f_maps": 32,
                "feature_layer_indices": [3, 5],
                "normal_dropout": 0.1,
                "channel_dropout": 0.1,
                "temporal_dropout": 0.1,
            },
            "xlstm": {"hidden_dim": 32, "num_heads": 2, "gate_attention_dim": 8},
            "fourier": {"num_coefficients": 8, "condition_dim": 16},
            "decoder": {"num_layers": 4, "num_f_maps": 24, "time_emb_dim": 64},
            "diffusion": {"num_train_timesteps": 100, "sampling_steps": 5},
        },
        "data": {"root": str(data_root), "window": 64, "hop": 32},
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "windows_per_epoch": 32,
            "lr": 2e-3,
            "eval_every": 1000,
            "out_dir": str(out_dir),
            "device": "cpu",
            **train,
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(module: str, *args, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
