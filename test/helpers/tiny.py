"""Small HopaDIFF configurations so model tests run in well under a second each."""

from __future__ import annotations

import dataclasses

from hopadiff.config import (
    AblationConfig,
    DecoderConfig,
    DiffusionConfig,
    EncoderConfig,
    FourierConfig,
    ModelConfig,
    XLSTMConfig,
)


def tiny_model_config(
    feature_dim=16, num_classes=5, multi_label=True, fusion="mean", condition_injection="qk", **ablation
) -> ModelConfig:
    return ModelConfig(
        feature_dim=feature_dim,
        num_classes=num_classes,
        multi_label=multi_label,
        fusion=fusion,
        encoder=EncoderConfig(num_layers=4, num_f_maps=16, feature_layer_indices=[1, 3]),
        xlstm=XLSTMConfig(hidden_dim=16, num_heads=2, gate_attention_dim=4),
        fourier=FourierConfig(num_coefficients=4, condition_dim=8),
        decoder=DecoderConfig(num_layers=3, num_f_maps=8, time_emb_dim=32, condition_injection=condition_injection),
        diffusion=DiffusionConfig(num_train_timesteps=100, sampling_steps=5),
        ablation=AblationConfig(**ablation),
    )


def with_changes(cfg, **changes):
    return dataclasses.replace(cfg, **changes)


def tiny_node_params(checkpoint, backbone_model, **overrides) -> dict:
    """rhas_node parameters for a tiny checkpoint + tiny CLIP on CPU, no downloads."""
    params = {
        "checkpoint": str(checkpoint),
        "backbone": "clip",
        "backbone_model": str(backbone_model),
        "local_files_only": True,
        "device": "cpu",
    }
    params.update(overrides)
    return params
