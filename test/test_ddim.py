"""DDIM sampler and beta schedules."""

from __future__ import annotations

import pytest
import torch

from hopadiff.model.ddim import DDIMSampler
from hopadiff.model.schedules import cosine_beta_schedule, make_betas


def test_cosine_schedule_properties():
    betas = cosine_beta_schedule(1000)
    assert betas.dtype == torch.float64 and betas.shape == (1000,)
    assert (betas > 0).all() and (betas <= 0.999).all()
    abar = torch.cumprod(1 - betas, 0)
    assert abar[0] > 0.9999 and abar[-1] < 1e-4
    assert (abar[1:] < abar[:-1]).all()


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="'quadratic'"):
        make_betas("quadratic", 10)


def test_set_timesteps():
    s = DDIMSampler(cosine_beta_schedule(1000))
    ts = s.set_timesteps(25)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 25
    assert (ts[1:] < ts[:-1]).all()
    assert s.previous(999) == int(ts[1]) and s.previous(0) == -1
    with pytest.raises(ValueError, match="1..1000"):
        s.set_timesteps(0)


def _run(sampler, denoise, x, steps, eta, generator=None):
    for t in sampler.set_timesteps(steps).tolist():
        x = sampler.step(denoise(x, t), t, x, eta=eta, generator=generator)
    return x


def test_constant_denoiser_lands_exactly_on_its_prediction():
    """With eta=0 and a denoiser that always predicts c, every x_t stays on the line
    sqrt(a_t) c + sqrt(1 - a_t) eps0, so the final sample is exactly c (closed form)."""
    s = DDIMSampler(cosine_beta_schedule(1000))
    c = torch.tensor([0.5, -1.0, 0.25], dtype=torch.float64)
    x = torch.randn(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = _run(s, lambda x, t: c, x, 10, eta=0.0)
    torch.testing.assert_close(out, c, rtol=0, atol=1e-9)


def test_full_loop_against_recorded_values():
    """Regression: a fixed nonlinear dummy denoiser, 5 steps, eta=0 (values recorded once)."""
    s = DDIMSampler(cosine_beta_schedule(1000))
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)
    out = _run(s, lambda x, t: torch.tanh(x) * (1 - t / 1000), x, 5, eta=0.0)
    recorded = torch.tensor(RECORDED, dtype=torch.float64)
    torch.testing.assert_close(out, recorded, rtol=0, atol=1e-6)


RECORDED = [-0.53992509987993, -0.3896748780344559, 0.0, 0.3896748780344559, 0.53992509987993]


def test_eta_zero_is_deterministic_and_eta_one_uses_the_generator():
    s = DDIMSampler(cosine_beta_schedule(100))
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    den = lambda x, t: 0.5 * x  # noqa: E731
    a = _run(s, den, x, 8, eta=0.0, generator=torch.Generator().manual_seed(0))
    b = _run(s, den, x, 8, eta=0.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    c = _run(s, den, x, 8, eta=1.0, generator=torch.Generator().manual_seed(0))
    d = _run(s, den, x, 8, eta=1.0, generator=torch.Generator().manual_seed(0))
    e = _run(s, den, x, 8, eta=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c, d) and not torch.equal(c, e)


def test_add_noise_matches_forward_process():
    s = DDIMSampler(cosine_beta_schedule(1000))
    x0 = torch.ones(3, 2)
    noise = torch.zeros(3, 2)
    t = torch.tensor([0, 500, 999])
    xt = s.add_noise(x0, noise, t)
    expected = s.alphas_cumprod[t].sqrt().float()[:, None].expand(3, 2)
    torch.testing.assert_close(xt, expected)
