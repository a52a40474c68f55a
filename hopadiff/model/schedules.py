"""Beta schedules as pure functions, computed in float64.

cosine: Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models", 2021, eq. 17.
linear: Ho et al., "Denoising Diffusion Probabilistic Models", 2020 (1e-4 .. 0.02).
"""

from __future__ import annotations

import math

import torch


def cosine_beta_schedule(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """betas (timesteps,) float64 with alpha_bar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2)."""
    t = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64) / timesteps
    alpha_bar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    return betas.clamp(0, max_beta)


def linear_beta_schedule(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    scale = 1000 / timesteps  # keeps the schedule's total noise comparable for other T
    return torch.linspace(scale * beta_start, scale * beta_end, timesteps, dtype=torch.float64)


SCHEDULES = {"cosine": cosine_beta_schedule, "linear": linear_beta_schedule}


def make_betas(name: str, timesteps: int) -> torch.Tensor:
    if name not in SCHEDULES:
        raise ValueError(f"unknown beta schedule {name!r}; allowed: {', '.join(SCHEDULES)}")
    if timesteps < 1:
        raise ValueError(f"num_train_timesteps must be >= 1, got {timesteps}")
    return SCHEDULES[name](timesteps)
