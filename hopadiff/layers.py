"""Building blocks shared by the encoder and the decoder.

Shape letters (used in every module of hopadiff):
  B batch, G branches (holistic / partial) stacked group-major along channels,
  D input feature dim, F feature maps, C classes, W (or T) frames.

Layers take ``groups=G`` so that G branches with SEPARATE weights run in one forward pass
(grouped convolutions): the branch is written once and instantiated G times, and during
DDIM sampling both branches' decoders cost one set of kernel launches instead of two.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def cat_groups(a: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
    """Concatenate per-branch channel blocks: (B, G*Fa, W), (B, G*Fb, W) -> (B, G*(Fa+Fb), W)."""
    B, _, W = a.shape
    a = a.reshape(B, groups, -1, W)
    b = b.reshape(B, groups, -1, b.shape[-1])
    return torch.cat([a, b], dim=2).reshape(B, -1, W)


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dilation: int, taps: int) -> torch.Tensor:
    """Attention of every frame over ``taps`` frames spaced by ``dilation`` around it.

    q, k: (N, Fa, W); v: (N, Fv, W) -> (N, Fv, W). The taps are the same positions a dilated
    convolution with kernel ``taps`` reads. Keys/values are padded once and read through
    strided slices (no index gathering); taps outside the sequence are masked out.
    """
    _, Fa, W = q.shape
    half = (taps - 1) // 2
    pad = half * dilation
    k_pad = F.pad(k, (pad, pad))  # (N, Fa, W + 2*pad)
    v_pad = F.pad(v, (pad, pad))
    k_taps = torch.stack([k_pad[..., j * dilation : j * dilation + W] for j in range(taps)], dim=2)  # (N, Fa, taps, W)
    v_taps = torch.stack([v_pad[..., j * dilation : j * dilation + W] for j in range(taps)], dim=2)  # (N, Fv, taps, W)
    scores = torch.einsum("nfw,nfjw->njw", q, k_taps) / math.sqrt(Fa)  # (N, taps, W)
    offsets = (torch.arange(taps, device=q.device) - half) * dilation  # (taps,)
    pos = torch.arange(W, device=q.device)[None, :] + offsets[:, None]  # (taps, W)
    outside = (pos < 0) | (pos >= W)
    scores = scores.masked_fill(outside, torch.finfo(scores.dtype).min)
    attn = scores.softmax(dim=1)  # (N, taps, W)
    return torch.einsum("njw,nfjw->nfw", attn, v_taps)


class DilatedAttentionLayer(nn.Module):
    """Residual layer: dilated conv + local dilated attention over the same taps, then
    instance norm and a feed-forward; optionally queries/keys also see a condition.

    x: (B, G*F, W), cond: (B, G*Fc, W) or None -> (B, G*F, W).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilation: int,
        dropout: float,
        groups: int = 1,
        cond_channels: int = 0,
    ):
        super().__init__()
        assert kernel_size % 2 == 1, f"kernel_size must be odd, got {kernel_size}"
        self.groups, self.channels, self.dilation, self.taps = groups, channels, dilation, kernel_size
        self.cond_channels = cond_channels
        G, Fm = groups, channels
        self.conv = nn.Conv1d(
            G * Fm,
            G * Fm,
            kernel_size,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            groups=G,
        )
        self.qk = nn.Conv1d(G * (Fm + cond_channels), G * 2 * Fm, 1, groups=G)
        self.v = nn.Conv1d(G * Fm, G * Fm, 1, groups=G)
        self.norm = nn.InstanceNorm1d(G * Fm)
        self.ffn = nn.Sequential(
            nn.Conv1d(G * Fm, G * Fm, 1, groups=G), nn.ReLU(), nn.Conv1d(G * Fm, G * Fm, 1, groups=G)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        B, _, W = x.shape
        G, Fm = self.groups, self.channels
        qk_in = x if cond is None else cat_groups(x, cond, G)
        qk = self.qk(qk_in).reshape(B * G, 2 * Fm, W)  # group-major channels -> fold branches into batch
        q, k = qk[:, :Fm], qk[:, Fm:]
        v = self.v(x).reshape(B * G, Fm, W)
        att = local_attention(q, k, v, self.dilation, self.taps).reshape(B, G * Fm, W)
        h = F.relu(self.conv(x) + att)
        h = self.ffn(self.norm(h))
        return x + self.dropout(h)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer/DDPM timestep embedding: (B,) integer steps -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([args.sin(), args.cos()], dim=-1)
    return F.pad(emb, (0, dim % 2))
