"""Building blocks shared by the encoder and the decoder.

Shape letters (used in every module of hopadiff):
  B batch, G branches (holistic / partial) stacked group-major along channels,
  D input feature dim, F feature maps, C classes, W (or T) frames.

Layers take ``groups=G`` so that G branches with SEPARATE weights run in one forward pass
(grouped convolutions): the branch is written once and instantiated G times, and during
DDIM sampling both branches' decoders cost one set of kernel launches instead of two.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def cat_groups(a: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
    """Concatenate per-branch channel blocks: (B, G*Fa, W), (B, G*Fb, W) -> (B, G*(Fa+Fb), W)."""
    B, _, W = a.shape
    a = a.reshape(B, groups, -1, W)
    b = b.reshape(B, groups, -1, b.shape[-1])
    return torch.cat([a, b], dim=2).reshape(B, -1, W)


class GroupedPointwise(nn.Module):
    """G independent 1x1 convolutions (one per branch) as one batched matmul.

    (B, G*Cin, W) -> (B, G*Cout, W). Same maths as nn.Conv1d(G*Cin, G*Cout, 1, groups=G),
    but a single bmm: on CPU, oneDNN's grouped 1x1 convolution costs ~4x more per call at
    the channel counts used here (measured in scripts/bench_model.py's history).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True):
        super().__init__()
        self.groups, self.in_channels, self.out_channels = groups, in_channels, out_channels
        bound = 1 / math.sqrt(in_channels)  # nn.Conv1d's default init range
        self.weight = nn.Parameter(torch.empty(groups, out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, out_channels, 1).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, W = x.shape
        G = self.groups
        if B == 1:  # streaming case: one window
            x = x.reshape(G, self.in_channels, W)
            y = torch.bmm(self.weight, x) if self.bias is None else torch.baddbmm(self.bias, self.weight, x)
        else:
            y = torch.matmul(self.weight, x.reshape(B, G, self.in_channels, W))  # (B, G, Cout, W)
            if self.bias is not None:
                y = y + self.bias
        return y.reshape(B, G * self.out_channels, W)


def dilated_taps(x: torch.Tensor, dilation: int, taps: int) -> torch.Tensor:
    """(N, F, W) -> (N, F, W, taps): x at t + (j - taps//2) * dilation, zero outside."""
    half = (taps - 1) // 2
    pad = half * dilation
    x_pad = F.pad(x, (pad, pad))
    W = x.shape[-1]
    if not torch.is_grad_enabled() and not torch.compiler.is_exporting():
        # Inference: a strided view, no copy. (unfold's backward materialises a gradient of
        # size W x (2*pad+1) per element, so training takes the slices below instead; so does an
        # ONNX export, where the view becomes a Gather that took 85 % of ONNX Runtime's step.)
        return x_pad.unfold(-1, 2 * pad + 1, 1)[..., ::dilation]
    return torch.stack([x_pad[..., j * dilation : j * dilation + W] for j in range(taps)], dim=-1)


def tap_outside(W: int, dilation: int, taps: int, device) -> torch.Tensor:
    """(W, taps) bool: True where the tap falls outside the sequence."""
    offsets = (torch.arange(taps, device=device) - (taps - 1) // 2) * dilation
    pos = torch.arange(W, device=device)[:, None] + offsets[None, :]
    return (pos < 0) | (pos >= W)


@functools.lru_cache(maxsize=256)
def tap_outside_mask(W: int, dilation: int, taps: int, device) -> torch.Tensor:
    """``tap_outside``, cached: every layer of every DDIM step of every window asks for the same
    few masks (read-only; never modify it). Built outside inference mode, so a mask first made
    during evaluation can be saved for backward when training resumes."""
    with torch.inference_mode(False), torch.no_grad():
        return tap_outside(W, dilation, taps, device)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """nn.InstanceNorm1d without affine or running statistics (DiffAct's norm): each channel of each
    sequence normalised over time. Written as a layer norm over the last dimension, the same
    formula in one fused kernel: InstanceNorm1d goes through batch_norm with B*C channels, 9 % of a
    window's time on the CPU (bench_model --profile)."""
    return F.layer_norm(x, x.shape[-1:], eps=eps)


def local_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dilation: int, taps: int) -> torch.Tensor:
    """Attention of every frame over ``taps`` frames spaced by ``dilation`` around it.

    q, k: (N, Fa, W); v: (N, Fv, W) -> (N, Fv, W). The taps are the same positions a dilated
    convolution with kernel ``taps`` reads; keys and values are read through strided views
    (no index gathering) and taps outside the sequence are masked out.
    """
    _, Fa, W = q.shape
    k_taps = dilated_taps(k, dilation, taps)  # (N, Fa, W, taps)
    v_taps = dilated_taps(v, dilation, taps)  # (N, Fv, W, taps)
    scores = (q[..., None] * k_taps).sum(1) / math.sqrt(Fa)  # (N, W, taps)
    # Under torch.compile the mask is built inside the graph (a constant there; the cache is Python state).
    outside = tap_outside if torch.compiler.is_compiling() else tap_outside_mask
    scores = scores.masked_fill(outside(W, dilation, taps, q.device), torch.finfo(scores.dtype).min)
    attn = scores.softmax(dim=-1)
    return (v_taps * attn[:, None]).sum(-1)


class DilatedAttentionLayer(nn.Module):
    """DiffAct's mixed conv-attention layer: dropout on the layer input, then a dilated conv
    plus a local dilated attention over the same taps, instance norm, a feed-forward, and the
    residual: ``x + ffn(norm(conv(drop(x)) + att(drop(x))))``. With ``cond_channels`` the
    attention queries/keys also read a condition, whose contribution is computed once per
    window (``condition_term``) and reused by every DDIM step.

    x: (B, G*F, W), cond_term: (B, G*2F, W) or None -> (B, G*F, W).
    """

    def __init__(
        self, channels: int, kernel_size: int, dilation: int, dropout: float, groups: int = 1, cond_channels: int = 0
    ):
        super().__init__()
        assert kernel_size % 2 == 1, f"kernel_size must be odd, got {kernel_size}"
        self.groups, self.channels, self.dilation, self.taps = groups, channels, dilation, kernel_size
        G, Fm = groups, channels
        # Dilated conv weights as (G, F_out, F_in * taps): applied to the tap view with one matmul.
        bound = 1 / math.sqrt(Fm * kernel_size)
        self.conv_weight = nn.Parameter(torch.empty(G, Fm, Fm * kernel_size).uniform_(-bound, bound))
        self.conv_bias = nn.Parameter(torch.empty(G, Fm, 1).uniform_(-bound, bound))
        self.qkv = GroupedPointwise(Fm, 3 * Fm, G)  # queries, keys from x (+ condition), values from x
        self.qk_cond = GroupedPointwise(cond_channels, 2 * Fm, G, bias=False) if cond_channels else None
        self.norm = instance_norm
        self.ffn = nn.Sequential(GroupedPointwise(Fm, Fm, G), nn.ReLU(), GroupedPointwise(Fm, Fm, G))
        self.dropout = nn.Dropout(dropout)

    def condition_term(self, cond: torch.Tensor) -> torch.Tensor:
        """(B, G*Fc, W) -> (B, G*2F, W) added to the queries/keys. The condition gets this layer's
        dropout, as DiffAct drops its cross input in every layer (identity at inference)."""
        return self.qk_cond(self.dropout(cond))

    def dilated_conv(self, x: torch.Tensor) -> torch.Tensor:
        B, _, W = x.shape
        G, Fm = self.groups, self.channels
        taps = dilated_taps(x.reshape(B * G, Fm, W), self.dilation, self.taps)  # (B*G, F, W, taps)
        taps = rearrange(taps, "(b g) f w k -> b g (f k) w", g=G)
        return (torch.matmul(self.conv_weight, taps) + self.conv_bias).reshape(B, G * Fm, W)

    def forward(self, x: torch.Tensor, cond_term: torch.Tensor | None = None) -> torch.Tensor:
        B, _, W = x.shape
        G, Fm = self.groups, self.channels
        x_drop = self.dropout(x)
        qkv = self.qkv(x_drop).reshape(B, G, 3 * Fm, W)
        qk = qkv[:, :, : 2 * Fm]
        if cond_term is not None:
            qk = qk + cond_term.reshape(B, G, 2 * Fm, W)
        q = qk[:, :, :Fm].reshape(B * G, Fm, W)
        k = qk[:, :, Fm:].reshape(B * G, Fm, W)
        v = qkv[:, :, 2 * Fm :].reshape(B * G, Fm, W)
        att = local_attention(q, k, v, self.dilation, self.taps).reshape(B, G * Fm, W)
        return x + self.ffn(self.norm(self.dilated_conv(x_drop) + att))


def sinusoidal_embedding(t: torch.Tensor, dim: int, diffact: bool = False) -> torch.Tensor:
    """Transformer/DDPM timestep embedding: (B,) integer steps -> (B, dim); [sin | cos] of
    t * 10000^(-i / n), i < dim // 2, with n = dim // 2 (this project) or dim // 2 - 1 (DiffAct's
    ``get_timestep_embedding``, from fairseq: its last frequency is exactly 1/10000)."""
    half = dim // 2
    i = torch.arange(half, device=t.device, dtype=torch.float32)
    if diffact:  # in DiffAct's float32 order of operations
        freqs = torch.exp(i * -(math.log(10000.0) / max(half - 1, 1)))
    else:
        freqs = torch.exp(-math.log(10000.0) * i / half)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([args.sin(), args.cos()], dim=-1)
    return F.pad(emb, (0, dim % 2))
