"""Fourier condition: a low-pass of the HP-xLSTM output, turned back into a smooth sequence.

The rFFT/irFFT pair uses the orthonormal convention, so keeping the lowest K coefficients is
an orthogonal projection: the condition's scale is bounded by its input's and does not grow
with the window length W (the authors' code adds an unnormalised DCT whose coefficients are
60-500x the feature scale). A grouped 1x1 convolution then maps each branch to the
condition width.

x: (B, G*Fin, W) -> (B, G*Fc, W).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import FourierConfig
from .layers import GroupedPointwise


def low_pass(x: torch.Tensor, num_coefficients: int) -> torch.Tensor:
    """Keep the lowest ``num_coefficients`` temporal frequencies of (..., W); computed in float32."""
    W = x.shape[-1]
    spec = torch.fft.rfft(x.float(), dim=-1, norm="ortho")  # (..., W//2 + 1)
    spec = spec[..., :num_coefficients]
    return torch.fft.irfft(spec, n=W, dim=-1, norm="ortho").to(x.dtype)


class FourierCondition(nn.Module):
    def __init__(self, cfg: FourierConfig, in_dim: int, groups: int, use_low_pass: bool = True):
        super().__init__()
        if cfg.num_coefficients < 1:
            raise ValueError(f"fourier.num_coefficients must be >= 1, got {cfg.num_coefficients}")
        self.num_coefficients = cfg.num_coefficients
        self.use_low_pass = use_low_pass
        self.proj = GroupedPointwise(in_dim, cfg.condition_dim, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_low_pass:
            x = low_pass(x, self.num_coefficients)
        return self.proj(x)
