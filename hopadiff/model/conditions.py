"""Random training conditions: which frames of the decoder's condition a training sample sees.

DiffAct's (``full``, ``zero``, ``boundary05-`` / ``boundary03-``: frames whose smoothed boundary
target is below 0.5 / 0.3 kept, ``segment=1`` / ``segment=2``: every frame of one / two
ground-truth classes, drawn among those present, blanked) and this project's (``boundary``:
+-W/32 frames around every change blanked, ``spans``: two random spans of W/16..W/4 frames).
"""

from __future__ import annotations

import torch

from .losses import boundary_targets

CONDITIONS = ("full", "zero", "boundary05-", "boundary03-", "segment=1", "segment=2", "boundary", "spans")


def condition_mask(target, types, probs, boundary_smooth: float, generator=None) -> torch.Tensor:
    """(B, 1, W) multiplier over the decoder's condition: one random training condition per sample,
    ``types`` drawn with ``probs`` (DiffusionConfig.condition_types / condition_probs); ``target``
    (B, C, W) in [0, 1]; ``boundary_smooth``: the sigma of DiffAct's smoothed boundary targets."""
    B, _, W = target.shape
    device = target.device
    rdev = generator.device if generator is not None else device  # draws happen where the generator lives
    weights = torch.tensor(probs, dtype=torch.float, device=rdev)
    kinds = [types[k] for k in torch.multinomial(weights, B, replacement=True, generator=generator)]
    mask = torch.ones(B, 1, W, device=device)
    if any(k.startswith("boundary0") for k in kinds):  # DiffAct's smoothed boundary targets
        soft = boundary_targets(target, True, boundary_smooth)  # (B, W)
    frames = torch.arange(W, device=device)
    changes = (target[..., 1:] != target[..., :-1]).any(dim=1)  # (B, W-1)
    radius = max(1, W // 32)
    classes = target.argmax(dim=1)  # (B, W): DiffAct's argmax of the ground truth

    def randint(low: int, high: int) -> int:  # [low, high)
        return int(torch.randint(low, high, (1,), generator=generator, device=rdev))

    for b, name in enumerate(kinds):
        if name == "zero":
            mask[b] = 0
        elif name in ("boundary05-", "boundary03-"):
            mask[b, 0] = (soft[b] < (0.5 if name == "boundary05-" else 0.3)).float()
        elif name in ("segment=1", "segment=2"):
            present = classes[b].unique()
            for _ in range(int(name[-1])):  # independent draws: segment=2 may pick one class twice
                mask[b, 0, classes[b] == present[randint(0, present.numel())]] = 0
        elif name == "boundary":
            where = changes[b].nonzero().flatten() + 1
            if where.numel():
                near = (frames[None, :] - where[:, None]).abs().le(radius).any(0)
                mask[b, 0, near] = 0
        elif name == "spans":
            for _ in range(2):
                length = randint(max(1, W // 16), max(2, W // 4) + 1)
                start = randint(0, max(1, W - length + 1))
                mask[b, 0, start : start + length] = 0
    return mask
