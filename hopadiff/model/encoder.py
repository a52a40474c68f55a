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


class Encoder(nn.Module):
    def __init__(self, cfg: EncoderConfig, feature_dim: int, num_classes: int, groups: int):
        super().__init__()
        bad = [i for i in cfg.feature_layer_indices if not 0 <= i < cfg.num_layers]
        if bad:
            raise ValueError(f"encoder.feature_layer_indices {bad} outside 0..{cfg.num_layers - 1}")
        self.cfg, self.groups = cfg, groups
        G, Fm = groups, cfg.num_f_maps
        self.dropout = InputDropout(cfg)
        self.conv_in = GroupedPointwise(feature_dim, Fm, G)
        self.layers = nn.ModuleList(
            DilatedAttentionLayer(Fm, cfg.kernel_size, 2**i, cfg.normal_dropout, groups=G)
            for i in range(cfg.num_layers)
        )
        self.conv_out = GroupedPointwise(Fm, num_classes, G)
        self.out_channels = Fm * len(cfg.feature_layer_indices)  # per branch

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, _, W = x.shape
        h = self.conv_in(self.dropout(x))
        picked = []
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i in self.cfg.feature_layer_indices:
                picked.append(h.reshape(B, self.groups, -1, W))
        feats = torch.cat(picked, dim=2).reshape(B, -1, W)  # (B, G*F*k, W)
        return self.conv_out(h), feats
