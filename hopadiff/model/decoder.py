"""Denoising decoder (DiffAct style), one per branch, all branches in one grouped forward.

x_t: (B, G*C, W) noisy actions in [-scale, scale], t: (B,) diffusion steps,
cond: (B, G*Fc, W) branch features + Fourier condition -> x0 logits (B, G*C, W).
Attention queries/keys read [action features ; condition], values the action features.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import DecoderConfig
from .layers import DilatedAttentionLayer, GroupedPointwise, sinusoidal_embedding

COND_F_MAPS = 64  # width the condition is projected to once, before the layers


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig, num_classes: int, cond_dim: int, groups: int):
        super().__init__()
        self.cfg, self.groups = cfg, groups
        G, Fm, E = groups, cfg.num_f_maps, cfg.time_emb_dim
        self.conv_in = GroupedPointwise(num_classes, Fm, G)
        self.cond_in = GroupedPointwise(cond_dim, COND_F_MAPS, G)
        # Time MLP per branch, as grouped pointwise maps over a length-1 sequence: (B, G*E, 1).
        self.time_mlp = nn.Sequential(GroupedPointwise(E, E, G), nn.SiLU(), GroupedPointwise(E, E, G))
        self.time_proj = GroupedPointwise(E, Fm * cfg.num_layers, G)  # all layers' time shifts at once
        self.layers = nn.ModuleList(
            DilatedAttentionLayer(Fm, cfg.kernel_size, 2**i, cfg.dropout, groups=G, cond_channels=COND_F_MAPS)
            for i in range(cfg.num_layers)
        )
        self.conv_out = GroupedPointwise(Fm, num_classes, G)

    def encode_condition(self, cond: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer query/key terms of the condition (B, G*Fc, W): computed once per window,
        reused by every DDIM step."""
        cond = self.cond_in(cond)
        return [layer.condition_term(cond) for layer in self.layers]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond_terms: list[torch.Tensor]) -> torch.Tensor:
        B = x_t.shape[0]
        G, Fm, L = self.groups, self.cfg.num_f_maps, self.cfg.num_layers
        emb = sinusoidal_embedding(t, self.cfg.time_emb_dim).to(x_t.dtype)  # (B, E)
        emb = self.time_mlp(emb.repeat(1, G)[:, :, None])  # (B, G*E, 1), per-branch weights
        shifts = self.time_proj(emb).reshape(B, G, L, Fm, 1)  # (B, G, L, F, 1)
        h = self.conv_in(x_t)
        for i, (layer, term) in enumerate(zip(self.layers, cond_terms, strict=True)):
            h = layer(h + shifts[:, :, i].reshape(B, G * Fm, 1), term)
        return self.conv_out(h)
