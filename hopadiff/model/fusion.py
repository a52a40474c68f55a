"""How the branches' final probabilities become one prediction (``model.fusion``).

probs: (B, G, C, W) per-branch probabilities in [0, 1] -> (B, C, W).

  mean        the paper: the average of the branches
  partial     the target-crop branch only (the holistic branch sees everybody in the frame)
  confidence  per frame and class, each branch weighted by its certainty: |2p - 1| for
              multi-label sigmoids, the frame's top probability for single-label softmaxes
  learned     per-class branch weights (a softmax over G of learned logits), trained by a
              classification loss on the fused output of the branches' detached x0 estimates,
              so they learn how far to trust each branch without changing the branches
  gated       per-frame branch weights from a small temporal convolution over both branches'
              (detached) decoder conditions and the target's visibility flag: it can learn to
              lean on the whole-scene view where the crop is occluded or shows someone else;
              trained like ``learned``
"""

from __future__ import annotations

import torch
from torch import nn

FUSIONS = ("mean", "partial", "confidence", "learned", "gated")
GATE_WIDTH, GATE_KERNEL = 32, 5  # the gate's hidden channels and temporal reach (frames)


class Fusion(nn.Module):
    def __init__(
        self, mode: str, branch_names: tuple[str, ...], num_classes: int, multi_label: bool, context_dim: int = 0
    ):
        super().__init__()
        if mode not in FUSIONS:
            raise ValueError(f"model.fusion must be one of {', '.join(FUSIONS)}, got {mode!r}")
        self.mode, self.multi_label = mode, multi_label
        self.partial_index = branch_names.index("partial") if "partial" in branch_names else 0
        G = len(branch_names)
        self.logits = nn.Parameter(torch.zeros(G, num_classes)) if mode == "learned" else None
        self.gate = None
        if mode == "gated" and G > 1:  # context: the branches' conditions and the visibility flag
            self.gate = nn.Sequential(
                nn.Conv1d(context_dim + 1, GATE_WIDTH, GATE_KERNEL, padding=GATE_KERNEL // 2),
                nn.ReLU(),
                nn.Conv1d(GATE_WIDTH, G, 1),
            )

    @property
    def trained(self) -> bool:
        """Has weights of its own (trained on the branches' detached estimates)."""
        return self.logits is not None or self.gate is not None

    def branches_read(self, num_branches: int) -> list[int]:
        """The branches whose probabilities the fused output depends on (inference may skip the rest)."""
        if self.mode == "partial" and num_branches > 1:
            return [self.partial_index]
        return list(range(num_branches))

    def forward(self, probs: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """``context`` (gated only): (B, context_dim + 1, W), the conditions and the visibility."""
        if probs.shape[1] == 1 or self.mode == "mean":
            return probs.mean(dim=1)
        if self.gate is not None:
            w = self.gate(context.to(self.gate[0].weight.dtype)).softmax(dim=1).to(probs.dtype)  # (B, G, W)
            return (w[:, :, None, :] * probs).sum(dim=1)
        if self.mode == "partial":
            return probs[:, self.partial_index]
        if self.mode == "confidence":
            # multi-label: |2p - 1| per class; single-label: the frame's top probability
            w = (2 * probs - 1).abs() if self.multi_label else probs.amax(dim=2, keepdim=True).expand_as(probs)
            w = w + 1e-6  # equal weights where no branch is certain
            return (w * probs).sum(dim=1) / w.sum(dim=1)
        w = self.logits.softmax(dim=0).to(probs.dtype)  # (G, C)
        return (w[None, :, :, None] * probs).sum(dim=1)
