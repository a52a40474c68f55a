"""Fourier condition, two operators (``fourier.operator``).

``lowpass`` (this project): a low-pass of the HP-xLSTM output, turned back into a smooth
sequence. The transform is the orthonormal DCT-II: the Fourier transform of the window's even
(mirror) extension, so unlike an rFFT low-pass it does not wrap the end of the window around to
its start. Keeping the lowest K coefficients is an orthogonal projection: the condition's scale
is bounded by its input's and does not grow with the window length W. A grouped 1x1
convolution then maps each branch to the condition width. x: (B, G*Fin, W) -> (B, G*Fc, W).

``dct_add`` (the authors' code): the encoder features plus their full, unnormalised DCT-II along
time (coefficient k added to frame k), before the xLSTM; :func:`dct2_unnormalised` computes it
with one FFT (Makhoul's reordering), as theirs does. Its coefficients grow with W (the DC term
is 2 * W * the mean): 60-500x the feature scale on real windows.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from ..config import FourierConfig
from .layers import GroupedPointwise


def _dct_rows(W, K: int, device: torch.device) -> torch.Tensor:
    """(K, W) rows of the orthonormal DCT-II: sqrt(2/W) c_k cos(pi (n + 1/2) k / W), c_0 = 1/sqrt(2);
    rows k >= W (a window shorter than K) are zero, so they keep nothing. ``W`` may be symbolic
    (an exported graph: no branch on its value)."""
    n = torch.arange(W, dtype=torch.float64, device=device)
    k = torch.arange(K, dtype=torch.float64, device=device)[:, None]
    length = n[-1:] + 1  # W as a tensor: sqrt of a symbolic size stays in the graph
    scale = torch.where(k == 0, math.sqrt(0.5), 1.0) * (k < W) * torch.sqrt(2.0 / length)
    basis = scale * torch.cos(math.pi * (n + 0.5) * k / W)
    return basis.to(dtype=torch.float32)


@functools.lru_cache(maxsize=32)
def dct_basis(W: int, K: int, device: torch.device, inference: bool = False) -> torch.Tensor:
    """``_dct_rows(W, K)``, cached per inference mode: a tensor made under torch.inference_mode
    cannot enter autograd. (torch has no DCT; the basis matmul costs O(W K) per channel, less
    than an FFT's overhead here.)"""
    return _dct_rows(W, K, device)


def low_pass(x: torch.Tensor, num_coefficients: int) -> torch.Tensor:
    """Keep the lowest ``num_coefficients`` DCT-II coefficients of (..., W); computed in float32."""
    W, K = x.shape[-1], num_coefficients
    if torch.compiler.is_compiling():  # traced for export: the basis is part of the graph
        basis = _dct_rows(W, K, x.device)
    else:
        basis = dct_basis(W, K, x.device, torch.is_inference_mode_enabled())  # (K, W)
    coeffs = x.float() @ basis.T  # (..., K)
    return (coeffs @ basis).to(x.dtype)


def dct2_unnormalised(x: torch.Tensor) -> torch.Tensor:
    """DCT-II along the last axis without normalisation: y_k = 2 sum_n x_n cos(pi k (2n + 1) / (2N))
    (scipy.fft.dct(x, type=2, norm=None)). Makhoul (1980): the even samples followed by the odd
    ones reversed, one complex FFT, each bin turned by e^{-i pi k / (2N)}."""
    N = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    if v.dtype not in (torch.float32, torch.float64):  # half precision: the FFT in float32
        v = v.float()
    spectrum = torch.fft.fft(v, dim=-1)
    k = torch.arange(N, device=x.device, dtype=v.dtype)
    turn = torch.polar(torch.ones_like(k), -math.pi * k / (2 * N))
    return (2 * (spectrum * turn).real).to(x.dtype)


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
