"""Per-branch encoder (ASFormer / DiffAct style), all branches in one grouped forward.

x: (B, G*D, W) -> (logits (B, G*C, W) for the auxiliary loss, features (B, G*F*k, W)),
where k = len(feature_layer_indices) layers' outputs are concatenated per branch.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..config import EncoderConfig
from .layers import DilatedAttentionLayer, GroupedPointwise
from .losses import probabilities


class InputDropout(nn.Module):
    """DiffAct's input dropouts: whole feature channels, then whole frames (seed 0.5 each).
    The third rate, ``normal_dropout``, is element dropout inside every encoder layer."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.channel = nn.Dropout1d(cfg.channel_dropout)  # zeros whole channels of (B, D, W)
        self.temporal = nn.Dropout1d(cfg.temporal_dropout)  # on (B, W, D): zeros whole frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel(x)
        return rearrange(self.temporal(rearrange(x, "b d w -> b w d")), "b w d -> b d w")


INPUT_FEATURES, ENCODER_PREDICTIONS = -1, -2  # DiffAct's special feature_layer_indices


class Encoder(nn.Module):
    """Features handed to the decoder are the outputs of ``feature_layer_indices``; as in DiffAct,
    index -1 adds the input features and -2 the encoder's own class probabilities."""

    def __init__(self, cfg: EncoderConfig, feature_dim: int, num_classes: int, groups: int, multi_label: bool = True):
        super().__init__()
        special = (INPUT_FEATURES, ENCODER_PREDICTIONS)
        bad = [i for i in cfg.feature_layer_indices if not (0 <= i < cfg.num_layers or i in special)]
        if bad:
            raise ValueError(
                f"encoder.feature_layer_indices {bad} outside 0..{cfg.num_layers - 1} "
                f"(or -1: input features, -2: encoder predictions)"
            )
        self.cfg, self.groups, self.multi_label = cfg, groups, multi_label
        G, Fm = groups, cfg.num_f_maps
        self.dropout = InputDropout(cfg)
        self.conv_in = GroupedPointwise(feature_dim, Fm, G)
        self.layers = nn.ModuleList(
            DilatedAttentionLayer(Fm, cfg.kernel_size, 2**i, cfg.normal_dropout, groups=G)
            for i in range(cfg.num_layers)
        )
        self.conv_out = GroupedPointwise(Fm, num_classes, G)
        idx = cfg.feature_layer_indices
        self.out_channels = (  # per branch
            Fm * sum(i >= 0 for i in idx)
            + feature_dim * (INPUT_FEATURES in idx)
            + num_classes * (ENCODER_PREDICTIONS in idx)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, G*D, W) -> logits (B, G*C, W), features (B, G*out_channels, W)."""
        B, _, W = x.shape
        G, idx = self.groups, self.cfg.feature_layer_indices
        picked = [x.reshape(B, G, -1, W)] if INPUT_FEATURES in idx else []  # DiffAct: before the dropouts
        h = self.conv_in(self.dropout(x))
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i in idx:
                picked.append(h.reshape(B, G, -1, W))
        logits = self.conv_out(h)
        if ENCODER_PREDICTIONS in idx:
            per_branch = logits.reshape(B * G, -1, W)
            picked.append(probabilities(per_branch, self.multi_label).reshape(B, G, -1, W))
        feats = torch.cat(picked, dim=2).reshape(B, -1, W)  # (B, G*out_channels, W)
        return logits, feats
