"""Denoising decoder (DiffAct style), one per branch, all branches in one grouped forward.

x_t: (B, G*C, W) noisy actions in [-scale, scale], t: (B,) diffusion steps,
cond: (B, G*Fc, W) branch features + Fourier condition -> x0 logits (B, G*C, W).
Attention queries/keys read [action features ; condition], values the action features
(DiffAct, ``condition_injection: qk``); with ``qk+residual`` a per-layer projection of the
condition is also added to the layer's input, so the values and the residual stream see it.
The diffusion step enters as a learned shift of every layer's input (``time_embedding:
per_layer``) or, as in DiffAct, once before the first layer (``diffact``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DecoderConfig
from .layers import DilatedAttentionLayer, GroupedPointwise, sinusoidal_embedding

COND_F_MAPS = 64  # width the condition is projected to once, before the layers
INJECTIONS = ("qk", "qk+residual")
TIME_EMBEDDINGS = ("per_layer", "diffact")


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig, num_classes: int, cond_dim: int, groups: int):
        super().__init__()
        if cfg.condition_injection not in INJECTIONS:
            raise ValueError(
                f"decoder.condition_injection must be one of {', '.join(INJECTIONS)}, got {cfg.condition_injection!r}"
            )
        if cfg.time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(
                f"decoder.time_embedding must be one of {', '.join(TIME_EMBEDDINGS)}, got {cfg.time_embedding!r}"
            )
        self.cfg, self.groups = cfg, groups
        self.diffact_time = cfg.time_embedding == "diffact"
        G, Fm, E = groups, cfg.num_f_maps, cfg.time_emb_dim
        self.conv_in = GroupedPointwise(num_classes, Fm, G)
        self.cond_in = GroupedPointwise(cond_dim, COND_F_MAPS, G)
        # Time MLP per branch, as grouped pointwise maps over a length-1 sequence: (B, G*E, 1).
        self.time_mlp = nn.Sequential(GroupedPointwise(E, E, G), nn.SiLU(), GroupedPointwise(E, E, G))
        # per_layer: all layers' time shifts at once; diffact: one shift, before the first layer.
        self.time_proj = GroupedPointwise(E, Fm * (1 if self.diffact_time else cfg.num_layers), G)
        self.layers = nn.ModuleList(
            DilatedAttentionLayer(Fm, cfg.kernel_size, 2**i, cfg.dropout, groups=G, cond_channels=COND_F_MAPS)
            for i in range(cfg.num_layers)
        )
        self.conv_out = GroupedPointwise(Fm, num_classes, G)
        # All layers' residual condition terms at once: (B, G*L*F, W).
        self.residual = (
            GroupedPointwise(COND_F_MAPS, Fm * cfg.num_layers, G) if cfg.condition_injection == "qk+residual" else None
        )

    def subset(self, groups: list[int]) -> Decoder:
        """A decoder running only the given branches (groups) of this one, with copies of their
        weights: every parameter here is stacked per group along its first dimension."""
        with torch.device("meta"):  # no allocation and no draw from the global RNG (training stays exact)
            sub = Decoder(self.cfg, self.conv_in.in_channels, self.cond_in.in_channels, len(groups))
        index = torch.tensor(groups, device=self.conv_in.weight.device)
        sub.load_state_dict({k: v.index_select(0, index) for k, v in self.state_dict().items()}, assign=True)
        return sub.train(self.training)

    def encode_condition(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per-layer (query/key term, residual term or None) of the condition (B, G*Fc, W):
        computed once per window, reused by every DDIM step."""
        cond = self.cond_in(cond)
        L, Fm = self.cfg.num_layers, self.cfg.num_f_maps
        residual = [None] * L
        if self.residual is not None:
            B, _, W = cond.shape
            res = self.residual(cond).reshape(B, self.groups, L, Fm, W)
            residual = [res[:, :, i].reshape(B, self.groups * Fm, W) for i in range(L)]
        return [(layer.condition_term(cond), r) for layer, r in zip(self.layers, residual, strict=True)]

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond_terms) -> torch.Tensor:
        B = x_t.shape[0]
        G, Fm, L = self.groups, self.cfg.num_f_maps, self.cfg.num_layers
        emb = sinusoidal_embedding(t, self.cfg.time_emb_dim, self.diffact_time).to(x_t.dtype)  # (B, E)
        emb = self.time_mlp(emb.repeat(1, G)[:, :, None])  # (B, G*E, 1), per-branch weights
        h = self.conv_in(x_t)
        if self.diffact_time:
            h = h + self.time_proj(F.silu(emb))  # (B, G*F, 1), once
            shifts = None
        else:
            shifts = self.time_proj(emb).reshape(B, G, L, Fm, 1)  # (B, G, L, F, 1)
        for i, (layer, (qk_term, res_term)) in enumerate(zip(self.layers, cond_terms, strict=True)):
            if shifts is not None:
                h = h + shifts[:, :, i].reshape(B, G * Fm, 1)
            if res_term is not None:
                h = h + res_term
            h = layer(h, qk_term)
        return self.conv_out(h)
