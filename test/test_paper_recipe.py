"""The paper's recipe, switch by switch, against DiffAct's and the authors' definitions on small
tensors (DiffAct: Finspire13/DiffAct model.py / dataset.py; the authors: KPeng9510/HopaDIFF
model.py / configs/RHAS_config.json), each written out here as a transcription; and the
rhas133_*_paper*.yaml configs switch every one of them."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter1d
from tiny import tiny_model_config
from train_util import C, D, make_dataset, tiny_experiment

from hopadiff.checkpoint import read_checkpoint
from hopadiff.config import load_config
from hopadiff.model import HopaDIFF
from hopadiff.model.ddim import DDIMSampler
from hopadiff.model.fourier import dct2_unnormalised
from hopadiff.model.layers import sinusoidal_embedding
from hopadiff.model.schedules import make_betas
from hopadiff.train import Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "config" / "hopadiff"


def paper_model_config(**diffusion):
    """The tiny test model with every paper switch on."""
    cfg = tiny_model_config()
    cfg.condition = "xlstm"
    cfg.fourier.operator = "dct_add"
    cfg.decoder.time_embedding = "diffact"
    cfg.diffusion.eta = 1.0
    cfg.diffusion.timestep_spacing = "diffact"
    cfg.diffusion.decoder_input = "clamp01"
    cfg.diffusion.condition_types = ["full", "zero", "boundary05-", "segment=1", "segment=2"]
    cfg.diffusion.condition_probs = [0.2] * 5
    for k, v in diffusion.items():
        setattr(cfg.diffusion, k, v)
    return cfg


# ------------------------------------------------------------------ transcriptions
def diffact_timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    step = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return F.pad(emb, (0, 1, 0, 0)) if dim % 2 == 1 else emb


def diffact_boundary_seq(labels: np.ndarray, sigma: float) -> np.ndarray:
    seq = np.zeros(len(labels))
    starts = [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]
    for b in starts:
        seq[b] = seq[b - 1] = 1
    seq = gaussian_filter1d(seq, sigma)
    pair = np.zeros_like(seq)
    pair[len(pair) // 2] = pair[len(pair) // 2 - 1] = 1
    peak = gaussian_filter1d(pair, sigma).max()
    seq[seq > peak] = peak
    return seq / seq.max()


def diffact_ddim_update(x_t, x0, a, a_next, eta, noise):
    pred_noise = (x_t / math.sqrt(a) - x0) / math.sqrt(1 / a - 1)  # predict_noise_from_start
    sigma = eta * math.sqrt((1 - a / a_next) * (1 - a_next) / (1 - a))
    c = math.sqrt(1 - a_next - sigma**2)
    return x0 * math.sqrt(a_next) + c * pred_noise + sigma * noise


# ------------------------------------------------------------------ switches
@pytest.mark.parametrize("dim", [512, 33, 8])
def test_time_embedding_is_diffacts_and_enters_once(dim):
    t = torch.tensor([0, 1, 7, 500, 999])
    assert torch.allclose(sinusoidal_embedding(t, dim, diffact=True), diffact_timestep_embedding(t, dim), atol=1e-6)
    assert not torch.allclose(sinusoidal_embedding(t, dim), diffact_timestep_embedding(t, dim), atol=1e-3)

    model = HopaDIFF(paper_model_config()).eval()
    dec = model.decoder
    x, steps = torch.rand(2, 2 * 5, 12), torch.tensor([3, 80])
    cond_terms = dec.encode_condition(torch.randn(2, dec.cond_in.in_channels * 2, 12))
    # DiffAct: emb -> Linear -> swish -> Linear; h = conv_in(x) + time_proj(swish(emb)), then the layers.
    emb = dec.time_mlp(diffact_timestep_embedding(steps, dec.cfg.time_emb_dim).repeat(1, 2)[:, :, None])
    h = dec.conv_in(x) + dec.time_proj(emb * torch.sigmoid(emb))
    for layer, (qk, _) in zip(dec.layers, cond_terms, strict=True):
        h = layer(h, qk)
    assert torch.allclose(dec(x, steps, cond_terms), dec.conv_out(h), atol=1e-5)


def test_decoder_reads_x_t_clamped_to_zero_one_in_training_and_sampling():
    scale = 0.7
    seen = {}
    for mode in ("clamp01", "raw"):
        model = HopaDIFF(paper_model_config(decoder_input=mode, scale=scale))
        x_t = torch.linspace(-3, 3, 50)
        if mode == "clamp01":  # DiffAct's model_predictions: clamp, then denormalize
            assert torch.allclose(model._decoder_input(x_t), ((x_t.clamp(-scale, scale) / scale) + 1) / 2)
        inputs: list[torch.Tensor] = []

        def record(module, args, out, inputs=inputs):
            inputs.append(args[0].detach().clone())

        model.decoder.conv_in.register_forward_hook(record)
        h, p = torch.randn(2, 16, 20), torch.randn(2, 16, 20)
        model.training_losses(h, p, (torch.rand(2, 5, 20) < 0.3).float(), generator=torch.Generator().manual_seed(0))
        model.predict(h, p, steps=4, generator=torch.Generator().manual_seed(0))
        seen[mode] = torch.cat([i.flatten() for i in inputs])
    assert seen["clamp01"].min() >= 0 and seen["clamp01"].max() <= 1
    assert seen["raw"].min() < -0.5 or seen["raw"].max() > 1.5  # x_t itself


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_boundary_masks_are_diffacts(sigma):
    labels = np.array([0] * 9 + [2] * 14 + [1] * 5 + [2] * 12)
    target = F.one_hot(torch.from_numpy(labels), 3).T[None].float()
    soft = diffact_boundary_seq(labels, sigma)
    for kind, threshold in (("boundary05-", 0.5), ("boundary03-", 0.3)):
        cfg = paper_model_config(condition_types=[kind], condition_probs=[1.0])
        cfg.loss.boundary_smooth = sigma
        mask = HopaDIFF(cfg)._condition_mask(target, torch.Generator().manual_seed(0))
        assert np.array_equal(mask[0, 0].numpy(), (soft < threshold).astype(np.float32)), kind


def test_segment_masks_blank_whole_ground_truth_classes():
    labels = np.array([0] * 6 + [3] * 5 + [1] * 7 + [3] * 4 + [2] * 8)
    target = F.one_hot(torch.from_numpy(labels), 4).T[None].float().repeat(400, 1, 1)
    for kind, most in (("segment=1", 1), ("segment=2", 2)):
        model = HopaDIFF(paper_model_config(condition_types=[kind], condition_probs=[1.0]))
        masks = model._condition_mask(target, torch.Generator().manual_seed(1))[:, 0].numpy()
        counts = []
        for m in masks:
            blanked = set(labels[m == 0].tolist())
            assert blanked and set(labels[m == 1].tolist()).isdisjoint(blanked)  # whole classes, never part of one
            counts.append(len(blanked))
        assert max(counts) == most and set(counts) <= set(range(1, most + 1))
    # segment=2 draws twice independently (DiffAct): the same class twice 1/4 of the time with 4 classes
    assert 0.18 < counts.count(1) / len(counts) < 0.32


def test_condition_types_are_drawn_with_their_weights():
    """The authors' list [full, zero, boundary05-, segment=2, segment=2] drawn uniformly: segment=2 at 0.4."""
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10)
    target = F.one_hot(torch.from_numpy(labels), 3).T[None].float().repeat(4000, 1, 1)
    cfg = load_config(CONFIGS / "rhas133_clip_paper_authors.yaml").model
    assert cfg.diffusion.condition_types == ["full", "zero", "boundary05-", "segment=2"]
    tiny = paper_model_config(
        condition_types=cfg.diffusion.condition_types, condition_probs=cfg.diffusion.condition_probs
    )
    tiny.loss.boundary_smooth = 1.0
    masks = HopaDIFF(tiny)._condition_mask(target, torch.Generator().manual_seed(2))[:, 0]
    boundary = torch.from_numpy((diffact_boundary_seq(labels, 1.0) < 0.5).astype(np.float32))
    share = {
        "full": (masks == 1).all(1).float().mean().item(),
        "zero": (masks == 0).all(1).float().mean().item(),
        "boundary05-": (masks == boundary).all(1).float().mean().item(),
    }
    share["segment=2"] = 1 - sum(share.values())
    for kind, expected in zip(cfg.diffusion.condition_types, cfg.diffusion.condition_probs, strict=True):
        assert abs(share[kind] - expected) < 0.03, share


def test_ddim_eta_one_and_diffacts_timesteps():
    sampler = DDIMSampler(make_betas("cosine", 1000))
    times = torch.linspace(-1, 999, 26).int().tolist()[::-1]  # DiffAct's ddim_sample
    assert [*sampler.set_timesteps(25, "diffact").tolist(), -1] == times
    a_bar = sampler.alphas_cumprod
    g = torch.Generator().manual_seed(0)
    x_t, x0 = torch.randn(3, 4, 10, generator=g), torch.rand(3, 4, 10, generator=g) * 2 - 1
    for t, t_next in itertools.pairwise(times):
        ours = sampler.step(x0, t, x_t, eta=1.0, generator=torch.Generator().manual_seed(t))
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(t))
        a_next = 1.0 if t_next < 0 else float(a_bar[t_next])
        if t_next < 0:  # DiffAct returns x_start after the last step
            assert torch.allclose(ours, x0, atol=1e-6)
        else:
            ref = diffact_ddim_update(x_t, x0, float(a_bar[t]), a_next, 1.0, noise)
            assert torch.allclose(ours, ref, atol=1e-5), t


@pytest.mark.parametrize("n", [1, 2, 7, 16, 33])
def test_authors_dct_is_the_unnormalised_dct_ii(n):
    x = torch.randn(3, 5, n, dtype=torch.float64)
    expected = scipy.fft.dct(x.numpy(), type=2, norm=None, axis=-1)
    assert np.allclose(dct2_unnormalised(x).numpy(), expected, atol=1e-8)


def test_condition_is_the_xlstm_output_of_features_plus_their_dct():
    model = HopaDIFF(paper_model_config()).eval()
    h, p = torch.randn(2, 16, 24), torch.randn(2, 16, 24)
    with torch.no_grad():
        _, feats = model.encoder(model._branch_input(h, p, None))
        expected = torch.cat(model.xlstm(list((feats + dct2_unnormalised(feats)).chunk(2, dim=1))), dim=1)
        _, cond = model.encode(h, p)
    assert cond.shape == feats.shape and torch.allclose(cond, expected, atol=1e-6)


def test_paper_recipe_trains_every_parameter_and_samples():
    model = HopaDIFF(paper_model_config()).train()
    g = torch.Generator().manual_seed(0)
    h, p = torch.randn(4, 16, 40, generator=g), torch.randn(4, 16, 40, generator=g)
    y = (torch.rand(4, 5, 40, generator=g) < 0.3).float()
    model.training_losses(h, p, y, generator=torch.Generator().manual_seed(3))["total"].backward()
    missing = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum() > 0]
    assert not missing, missing
    out = model.predict(h, p, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 5, 40) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["clip_paper", "blip2_paper", "clip_paper_authors", "blip2_paper_authors"])
def test_paper_configs_switch_every_respect(name):
    cfg = load_config(CONFIGS / f"rhas133_{name}.yaml")
    m, dc = cfg.model, cfg.model.diffusion
    operator = "dct_add" if name.endswith("authors") else "lowpass"  # the authors' DCT / the seed's normalised one
    assert (m.fusion, m.condition, m.fourier.operator) == ("mean", "xlstm", operator)
    assert (m.decoder.condition_injection, m.decoder.time_embedding) == ("qk", "diffact")
    assert (dc.eta, dc.timestep_spacing, dc.decoder_input) == (1.0, "diffact", "clamp01")
    assert (cfg.train.sampling, cfg.train.batch_size, cfg.train.grad_accumulation) == ("videos", 1, 4)
    assert cfg.data.eval_window == 0 and cfg.train.lr == 1e-4 and cfg.train.epochs == 1000
    expected = (
        (["full", "zero", "boundary05-", "segment=2"], [0.2, 0.2, 0.2, 0.4])
        if name.endswith("authors")
        else (["full", "zero", "boundary05-", "segment=1", "segment=2"], [0.2] * 5)
    )
    assert (dc.condition_types, dc.condition_probs) == expected
    HopaDIFF(m)  # builds


# ------------------------------------------------------------------ whole-video training
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory)


def test_whole_video_training_sees_every_sample_once_per_epoch(dataset, tmp_path):
    path = tiny_experiment(
        tmp_path / "v.yaml", dataset, tmp_path / "v", D, C, epochs=1, sampling="videos", grad_accumulation=4
    )
    cfg = load_config(path)
    trainer = Trainer(cfg)
    n = len(trainer.train_samples)
    seen = [b["holistic"].shape for b in trainer.micro_batches()]
    lengths = sorted(s.num_frames for s in trainer.train_samples)
    assert sorted(shape[2] for shape in seen) == lengths and all(shape[0] == 1 for shape in seen)
    assert trainer.steps_per_epoch() == math.ceil(n / 4)
    trainer.fit()
    assert read_checkpoint(tmp_path / "v" / "last.pt")["extra"]["step"] == math.ceil(n / 4)
