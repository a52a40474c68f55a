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


def boundary_targets(target: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """(B, W-1) float: 1 where the label (set) of frame t+1 differs from frame t."""
    if multi_label:
        return (target[..., 1:] != target[..., :-1]).any(dim=1).float()
    return (target[:, 1:] != target[:, :-1]).float()


def boundary_loss(logits, target, multi_label: bool):
    """BCE between (1 - cosine similarity of consecutive frame probabilities) and boundaries."""
    p = probabilities(logits, multi_label)
    sim = F.cosine_similarity(p[..., 1:], p[..., :-1], dim=1, eps=1e-6)  # (B, W-1)
    pred = (1 - sim).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(pred, boundary_targets(target, multi_label))


def smoothness_loss(logits, multi_label: bool, clamp: float = 16.0):
    """MS-TCN truncated MSE between log-probabilities of consecutive frames (gradient only to t+1)."""
    logp = F.logsigmoid(logits) if multi_label else logits.log_softmax(dim=1)
    diff = (logp[..., 1:] - logp[..., :-1].detach()) ** 2
    return diff.clamp(max=clamp).mean()
