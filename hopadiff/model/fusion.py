"""How the branches' final probabilities become one prediction (``model.fusion``).

probs: (B, G, C, W) per-branch probabilities in [0, 1] -> (B, C, W).

  mean        the paper: the average of the branches
  partial     the target-crop branch only (the holistic branch sees everybody in the frame)
  confidence  per frame and class, each branch weighted by its certainty: |2p - 1| for
              multi-label sigmoids, the frame's top probability for single-label softmaxes
  learned     per-class branch weights (a softmax over G of learned logits, starting at 0.88 for
              the partial branch), trained by a
              classification loss on the fused output of the branches' detached x0 estimates,
              so they learn how far to trust each branch without changing the branches
"""

from __future__ import annotations

import torch
from torch import nn

FUSIONS = ("mean", "partial", "confidence", "learned")
PARTIAL_PRIOR = 2.0  # the learned fusion's initial logit of the partial branch (softmax weight 0.88 of two)


class Fusion(nn.Module):
    def __init__(self, mode: str, branch_names: tuple[str, ...], num_classes: int, multi_label: bool):
        super().__init__()
        if mode not in FUSIONS:
            raise ValueError(f"model.fusion must be one of {', '.join(FUSIONS)}, got {mode!r}")
        self.mode, self.multi_label = mode, multi_label
        self.partial_index = branch_names.index("partial") if "partial" in branch_names else 0
        G = len(branch_names)
        self.logits = None
        if mode == "learned":
            # Starts trusting the target's own crop (weight 0.88 of 2 branches) and learns per class
            # how far the whole-scene view helps: an untrained or briefly trained fusion is then close
            # to partial-only, not to the paper's mean (docs/ablations.md).
            prior = torch.zeros(G, num_classes)
            if G > 1:
                prior[self.partial_index] = PARTIAL_PRIOR
            self.logits = nn.Parameter(prior)

    def branches_read(self, num_branches: int) -> list[int]:
        """The branches whose probabilities the fused output depends on (inference may skip the rest)."""
        if self.mode == "partial" and num_branches > 1:
            return [self.partial_index]
        return list(range(num_branches))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.shape[1] == 1 or self.mode == "mean":
            return probs.mean(dim=1)
        if self.mode == "partial":
            return probs[:, self.partial_index]
        if self.mode == "confidence":
            # multi-label: |2p - 1| per class; single-label: the frame's top probability
            w = (2 * probs - 1).abs() if self.multi_label else probs.amax(dim=2, keepdim=True).expand_as(probs)
            w = w + 1e-6  # equal weights where no branch is certain
            return (w * probs).sum(dim=1) / w.sum(dim=1)
        w = self.logits.softmax(dim=0).to(probs.dtype)  # (G, C)
        return (w[None, :, :, None] * probs).sum(dim=1)
