"""DiffAct's single-branch model, written plainly, as the speed reference of bench_model.py --vs-diffact.

Not used by the package: a window-time baseline on the same machine and in the same run. The
architecture and sizes follow DiffAct's seed configuration (Liu et al., ICCV 2023; the encoder and
decoder adapted from ASFormer): an encoder of 10 mixed conv-attention layers (64 feature maps,
kernel 5, dilation 2^i; input 1x1 conv, class head), whose layers 5, 7 and 9 condition a decoder
of 8 such layers (24 feature maps) with cross-attention (queries and keys read the decoder's
features and the condition, values the features), a sinusoidal time embedding (512) through an
MLP added to every layer's input, and 25 DDIM steps. Written with the plain PyTorch modules a
first implementation uses (nn.Conv1d, nn.InstanceNorm1d, attention over unfolded neighbours),
one branch, no xLSTM and no Fourier condition: what HopaDIFF's two branches are compared with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def neighbours(x: torch.Tensor, dilation: int, taps: int) -> torch.Tensor:
    """(B, C, W) -> (B, C, W, taps): x at t + (j - taps // 2) * dilation, zero outside."""
    pad = (taps // 2) * dilation
    x = F.pad(x, (pad, pad))
    return torch.stack([x[..., j * dilation : j * dilation + x.shape[-1] - 2 * pad] for j in range(taps)], dim=-1)


class MixedLayer(nn.Module):
    """x + ffn(norm(dilated_conv(x) + local_attention(x))), the attention over the conv's taps."""

    def __init__(self, channels: int, kernel: int, dilation: int, cond_channels: int = 0):
        super().__init__()
        self.dilation, self.kernel = dilation, kernel
        self.conv = nn.Conv1d(channels, channels, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.query = nn.Conv1d(channels + cond_channels, channels, 1)
        self.key = nn.Conv1d(channels + cond_channels, channels, 1)
        self.value = nn.Conv1d(channels, channels, 1)
        self.norm = nn.InstanceNorm1d(channels)
        self.ffn = nn.Sequential(nn.Conv1d(channels, channels, 1), nn.ReLU(), nn.Conv1d(channels, channels, 1))
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x_drop = self.dropout(x)
        qk_in = x_drop if cond is None else torch.cat([x_drop, cond], dim=1)
        q, k, v = self.query(qk_in), self.key(qk_in), self.value(x_drop)
        k_n, v_n = neighbours(k, self.dilation, self.kernel), neighbours(v, self.dilation, self.kernel)
        scores = torch.einsum("bcw,bcwj->bwj", q, k_n) / math.sqrt(q.shape[1])
        W = x.shape[-1]
        pos = (
            torch.arange(W, device=x.device)[:, None]
            + (torch.arange(self.kernel, device=x.device) - self.kernel // 2) * self.dilation
        )
        scores = scores.masked_fill((pos < 0) | (pos >= W), float("-inf"))
        att = torch.einsum("bwj,bcwj->bcw", scores.softmax(-1), v_n)
        return x + self.ffn(self.norm(self.conv(x_drop) + att))


class DiffActReference(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, enc_maps: int = 64, dec_maps: int = 24,
                 enc_layers: int = 10, dec_layers: int = 8, kernel: int = 5, time_dim: int = 512,
                 cond_layers=(5, 7, 9), timesteps: int = 1000):  # fmt: skip
        super().__init__()
        self.cond_layers, self.time_dim, self.num_classes = cond_layers, time_dim, num_classes
        self.enc_in = nn.Conv1d(feature_dim, enc_maps, 1)
        self.enc = nn.ModuleList(MixedLayer(enc_maps, kernel, 2**i) for i in range(enc_layers))
        self.enc_out = nn.Conv1d(enc_maps, num_classes, 1)
        cond = enc_maps * len(cond_layers)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.time_proj = nn.ModuleList(nn.Linear(time_dim, dec_maps) for _ in range(dec_layers))
        self.dec_in = nn.Conv1d(num_classes, dec_maps, 1)
        self.dec = nn.ModuleList(MixedLayer(dec_maps, kernel, 2**i, cond) for i in range(dec_layers))
        self.dec_out = nn.Conv1d(dec_maps, num_classes, 1)
        self.register_buffer("alpha_bar", torch.cumprod(1 - torch.linspace(1e-4, 0.02, timesteps), 0))

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        h, kept = self.enc_in(features), []
        for i, layer in enumerate(self.enc):
            h = layer(h)
            if i in self.cond_layers:
                kept.append(h)
        self.enc_out(h)  # the encoder's class head (trained with the decoder; computed as DiffAct does)
        return torch.cat(kept, dim=1)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        half = self.time_dim // 2
        freq = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / (half - 1))
        arg = t.float()[:, None] * freq[None]
        return self.time_mlp(torch.cat([arg.sin(), arg.cos()], dim=1))

    def decode(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = F.silu(self.time_embedding(t))
        h = self.dec_in(x_t)
        for proj, layer in zip(self.time_proj, self.dec, strict=True):
            h = layer(h + proj(emb)[:, :, None], cond)
        return self.dec_out(h)

    @torch.inference_mode()
    def predict(self, features: torch.Tensor, steps: int = 25) -> torch.Tensor:
        """Deterministic DDIM from noise; (B, D, W) -> (B, C, W) probabilities."""
        cond = self.encode(features)
        B, _, W = features.shape
        x = torch.randn(B, self.num_classes, W, device=features.device)
        ts = torch.linspace(len(self.alpha_bar) - 1, 0, steps).long().tolist()
        probs = None
        for i, t in enumerate(ts):
            probs = self.decode(x, torch.full((B,), t, device=x.device), cond).softmax(1)
            x0 = 2 * probs - 1
            a_t = self.alpha_bar[t]
            a_p = self.alpha_bar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            x = a_p.sqrt() * x0 + (1 - a_p).sqrt() * eps
        return probs
