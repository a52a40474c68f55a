"""Denoising decoder (DiffAct style), one per branch, all branches in one grouped forward.

x_t: (B, G*C, W) noisy actions in [-scale, scale], t: (B,) diffusion steps,
cond: (B, G*Fc, W) branch features + Fourier condition -> x0 logits (B, G*C, W).
Attention queries/keys read [action features ; condition], values the action features.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import DecoderConfig
from .layers import DilatedAttentionLayer, sinusoidal_embedding

COND_F_MAPS = 64  # width the condition is projected to once, before the layers


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig, num_classes: int, cond_dim: int, groups: int):
        super().__init__()
        self.cfg, self.groups = cfg, groups
        G, Fm, E = groups, cfg.num_f_maps, cfg.time_emb_dim
        self.conv_in = nn.Conv1d(G * num_classes, G * Fm, 1, groups=G)
        self.cond_in = nn.Conv1d(G * cond_dim, G * COND_F_MAPS, 1, groups=G)
        # Time MLP per branch, as grouped 1x1 convs over a length-1 sequence: (B, G*E, 1).
        self.time_mlp = nn.Sequential(
            nn.Conv1d(G * E, G * E, 1, groups=G), nn.SiLU(), nn.Conv1d(G * E, G * E, 1, groups=G)
        )
        self.time_proj = nn.ModuleList(nn.Conv1d(G * E, G * Fm, 1, groups=G) for _ in range(cfg.num_layers))
        self.layers = nn.ModuleList(
            DilatedAttentionLayer(Fm, cfg.kernel_size, 2**i, cfg.dropout, groups=G, cond_channels=COND_F_MAPS)
            for i in range(cfg.num_layers)
        )
        self.conv_out = nn.Conv1d(G * Fm, G * num_classes, 1, groups=G)

    def encode_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """Project the condition once per window; reused by every DDIM step."""
        return self.cond_in(cond)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond_proj: torch.Tensor) -> torch.Tensor:
        G = self.groups
        emb = sinusoidal_embedding(t, self.cfg.time_emb_dim).to(x_t.dtype)  # (B, E)
        emb = self.time_mlp(emb.repeat(1, G)[:, :, None])  # (B, G*E, 1), per-branch weights
        h = self.conv_in(x_t)
        for proj, layer in zip(self.time_proj, self.layers, strict=True):
            h = layer(h + proj(emb), cond_proj)
        return self.conv_out(h)
