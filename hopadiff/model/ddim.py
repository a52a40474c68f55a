"""DDIM sampler (Song et al., "Denoising Diffusion Implicit Models", ICLR 2021).

A plain object, not an nn.Module: ``set_timesteps`` chooses the sampling steps, ``step``
does one reverse update from the model's x0 prediction, ``add_noise`` is the forward
process q(x_t | x_0) used in training. The schedule is kept in float64; per-step
coefficients are Python floats, so the update costs a few fused elementwise ops.
"""

from __future__ import annotations

import math

import torch


class DDIMSampler:
    def __init__(self, betas: torch.Tensor):
        assert betas.ndim == 1, f"betas must be 1-D, got shape {tuple(betas.shape)}"
        self.num_train_timesteps = betas.numel()
        self.alphas_cumprod = torch.cumprod(1.0 - betas.double(), dim=0)  # (T,) float64, CPU
        self.timesteps = torch.arange(self.num_train_timesteps - 1, -1, -1)

    def set_timesteps(self, num_steps: int, spacing: str = "linspace") -> torch.Tensor:
        """The sampling steps, descending and unique. ``linspace`` (this project): evenly spaced from
        T-1 down to 0, rounded. ``diffact``: DiffAct's ``linspace(-1, T-1, S+1)`` truncated to
        integers, without the -1 (e.g. T=1000, S=25: 999, 959, ..., 39; the last step's x0 estimate is
        the output, as ``step`` gives after the last step)."""
        T = self.num_train_timesteps
        if not 1 <= num_steps <= T:
            raise ValueError(f"DDIM steps must be in 1..{T}, got {num_steps}")
        if spacing == "linspace":
            steps = torch.linspace(T - 1, 0, num_steps, dtype=torch.float64).round().long()
        elif spacing == "diffact":
            steps = torch.linspace(-1, T - 1, num_steps + 1).int().flip(0)[:-1].long()
        else:
            raise ValueError(f"timestep spacing must be linspace or diffact, got {spacing!r}")
        self.timesteps = torch.unique_consecutive(steps)
        return self.timesteps

    def previous(self, t: int) -> int:
        """The step after ``t`` in the current schedule, -1 after the last."""
        idx = (self.timesteps == t).nonzero()
        assert idx.numel() == 1, f"step {t} is not in the schedule {self.timesteps.tolist()}"
        i = int(idx) + 1
        return int(self.timesteps[i]) if i < len(self.timesteps) else -1

    def _alpha_bar(self, t: int) -> float:
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def step(
        self,
        x0: torch.Tensor,
        t: int,
        x_t: torch.Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One reverse step x_t -> x_{t_prev} given the model's clean estimate x0.

        Paper symbols (Song et al. eq. 12):
          a_t = alpha_bar_t, a_p = alpha_bar_{t_prev} (1 after the last step)
          eps_hat = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)
          sigma = eta * sqrt((1 - a_p) / (1 - a_t)) * sqrt(1 - a_t / a_p)
          x_prev = sqrt(a_p) x0 + sqrt(1 - a_p - sigma^2) eps_hat + sigma z
        """
        t_prev = self.previous(t)
        a_t, a_p = self._alpha_bar(t), self._alpha_bar(t_prev)
        # 1. noise implied by the x0 estimate
        eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
        # 2. variance of the step; eta=0 is deterministic DDIM, eta=1 ancestral DDPM-like
        sigma = eta * math.sqrt((1.0 - a_p) / (1.0 - a_t) * (1.0 - a_t / a_p))
        # 3. direction pointing to x_t
        x_prev = math.sqrt(a_p) * x0 + math.sqrt(max(1.0 - a_p - sigma**2, 0.0)) * eps
        # 4. fresh noise
        if sigma > 0:
            z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
            x_prev = x_prev + sigma * z
        return x_prev

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) = sqrt(a_t) x0 + sqrt(1 - a_t) noise; x0, noise (B, ...), t (B,) int."""
        a = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)
        a = a.view(-1, *([1] * (x0.ndim - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise
