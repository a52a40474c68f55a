"""Losses of one branch: classification (BCE multi-label / CE single-label), boundary, smoothness.

logits: (B, C, W); target: (B, C, W) multi-hot float, or (B, W) int64 class ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Per-class probabilities: sigmoid for multi-label, softmax over classes otherwise."""
    return torch.sigmoid(logits) if multi_label else logits.softmax(dim=1)


def classification_loss(logits, target, multi_label: bool, class_weights: torch.Tensor | None = None):
    if multi_label:
        pos_weight = None if class_weights is None else class_weights[None, :, None]
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
    return F.cross_entropy(logits, target, weight=class_weights)


def _gaussian_kernel(sigma: float, device) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d's kernel: radius round(4 sigma), normalised to sum 1."""
    radius = max(1, int(4.0 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def boundary_targets(target: torch.Tensor, multi_label: bool, sigma: float = 0.0) -> torch.Tensor:
    """(B, W) float boundary targets as DiffAct builds them (``get_boundary_seq``): frames b-1
    and b are 1 around every change of label (set) at b; with ``sigma`` > 0 the sequence is
    Gaussian-smoothed (reflected edges, as gaussian_filter1d), clipped at the height a single
    boundary reaches, and divided by its maximum (windows without a change stay 0)."""
    changes = (target[..., 1:] != target[..., :-1]).any(dim=1) if multi_label else target[:, 1:] != target[:, :-1]
    edge = F.pad(changes.float(), (1, 0)) + F.pad(changes.float(), (0, 1))  # (B, W): frames b and b-1
    y = edge.clamp(max=1.0)
    if sigma <= 0:
        return y
    k = _gaussian_kernel(sigma, y.device)
    r = (k.numel() - 1) // 2
    W = y.shape[1]
    # scipy's "reflect" edges (d c b a | a b c d | d c b a), for any radius: fold indices with period 2W.
    idx = torch.arange(-r, W + r, device=y.device) % (2 * W)
    idx = torch.where(idx >= W, 2 * W - 1 - idx, idx)
    smooth = F.conv1d(y[:, None, idx], k.view(1, 1, -1))[:, 0]
    # Height of one isolated boundary (two adjacent ones) after smoothing: the clipping level.
    pair = torch.zeros(2 * r + 2, device=y.device)
    pair[r : r + 2] = 1
    peak = F.conv1d(pair.view(1, 1, -1), k.view(1, 1, -1)).max()
    smooth = smooth.clamp(max=float(peak))
    top = smooth.amax(dim=1, keepdim=True)
    return torch.where(top > 0, smooth / top.clamp(min=1e-12), smooth)


def boundary_loss(logits, target, multi_label: bool, sigma: float = 0.0):
    """DiffAct's decoder boundary loss: BCE between the predicted change at frame t and the
    boundary target of frame t (t >= 1).

    Single-label (DiffAct): change = 1 - <p_t, p_{t-1}>, the previous frame detached.
    Multi-label: per-class sigmoids are not a distribution, so their dot product is not bounded
    by 1; change = 1 - cosine(p_t, p_{t-1}.detach()) instead.
    """
    p = probabilities(logits, multi_label)
    prev = p[..., :-1].detach()
    # (B, W-1)
    sim = F.cosine_similarity(p[..., 1:], prev, dim=1, eps=1e-6) if multi_label else (p[..., 1:] * prev).sum(dim=1)
    pred = (1 - sim).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(pred, boundary_targets(target, multi_label, sigma)[:, 1:])


def smoothness_loss(logits, multi_label: bool, clamp: float = 16.0):
    """MS-TCN truncated MSE between log-probabilities of consecutive frames (gradient only to t+1)."""
    logp = F.logsigmoid(logits) if multi_label else logits.log_softmax(dim=1)
    diff = (logp[..., 1:] - logp[..., :-1].detach()) ** 2
    return diff.clamp(max=clamp).mean()
