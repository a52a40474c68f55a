"""DiffAct-faithful parts of HopaDIFF: dropout placement, the Fourier condition without
wrap-around, the loss terms, and the decoder/fusion switches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d
from tiny import tiny_model_config

from hopadiff.config import EncoderConfig
from hopadiff.model import HopaDIFF
from hopadiff.model.encoder import Encoder
from hopadiff.model.fourier import low_pass
from hopadiff.model.losses import boundary_loss, boundary_targets, smoothness_loss


def test_input_dropout_keeps_a_quarter_and_layers_drop_elements():
    """DiffAct: channel (0.5) and temporal (0.5) dropout on the input -> 25 % of elements survive,
    scaled x4; the third rate (normal, 0.5) is element dropout inside every encoder layer."""
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig(), feature_dim=256, num_classes=5, groups=1).train()
    x = torch.ones(8, 256, 512)
    dropped = enc.dropout(x)
    survived = (dropped != 0).float().mean().item()
    assert survived == pytest.approx(0.25, abs=0.02)
    assert set(dropped.unique().tolist()) <= {0.0, 4.0}
    assert [layer.dropout.p for layer in enc.layers] == [0.5] * len(enc.layers)
    # Element dropout on a layer's input: two train-mode passes differ, eval passes do not.
    layer, h = enc.layers[0], torch.randn(2, 64, 32)
    assert not torch.equal(layer(h), layer(h))
    layer.eval()
    assert torch.equal(layer(h), layer(h))


def test_fourier_condition_does_not_wrap_around():
    """An impulse in the last 4 frames of a window must not reach its first frame: the circular
    rFFT low-pass (the earlier version) put 0.21 there at W=64, K=16."""
    W = 64
    x = torch.zeros(1, 1, W)
    x[..., -4:] = 1.0
    y = low_pass(x, 16)
    circular = torch.fft.irfft(torch.fft.rfft(x, norm="ortho")[..., :16], n=W, norm="ortho")
    assert circular[..., 0].item() > 0.2
    assert y[..., 0].abs().item() < 0.01
    assert y[..., -2].item() > 0.5  # ... while the low-pass keeps it where it is
    # Orthonormal: a projection never grows the signal, whatever W.
    for W in (16, 256, 1024):
        z = torch.randn(3, 5, W)
        assert (low_pass(z, 16).norm(dim=-1) <= z.norm(dim=-1) + 1e-4).all()
    # Keeping every coefficient is the identity.
    z = torch.randn(2, 3, 20)
    assert torch.allclose(low_pass(z, 20), z, atol=1e-5)


def _diffact_boundary_seq(labels: np.ndarray, sigma: float) -> np.ndarray:
    """DiffAct's get_boundary_seq on one label sequence (independent of our torch version)."""
    b = np.zeros(len(labels))
    for t in np.flatnonzero(labels[1:] != labels[:-1]) + 1:
        b[t] = b[t - 1] = 1
    b = gaussian_filter1d(b, sigma)
    ref = np.zeros(len(labels))
    ref[len(ref) // 2] = ref[len(ref) // 2 - 1] = 1
    b = np.minimum(b, gaussian_filter1d(ref, sigma).max())
    return b / b.max()


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_boundary_targets_are_diffacts_smoothed_boundaries(sigma):
    labels = np.array([0] * 10 + [2] * 7 + [1] * 3 + [1] * 20)
    ours = boundary_targets(torch.tensor(labels)[None], multi_label=False, sigma=sigma)[0].numpy()
    assert ours == pytest.approx(_diffact_boundary_seq(labels, sigma), abs=1e-6)
    hard = boundary_targets(torch.tensor(labels)[None], multi_label=False)[0]
    assert hard.nonzero().flatten().tolist() == [9, 10, 16, 17]
    # A window without a change has no boundary (DiffAct would divide by 0).
    assert boundary_targets(torch.zeros(1, 12, dtype=torch.long), False, sigma).abs().sum() == 0


def test_boundary_and_smoothing_losses_on_a_hand_example():
    """Single-label: change(t) = 1 - <p_t, p_{t-1}>; BCE against the boundary target of t."""
    logits = torch.tensor([[[4.0, 4.0, -4.0], [-4.0, -4.0, 4.0]]])  # class 0, 0, then 1
    labels = torch.tensor([[0, 0, 1]])
    p = logits.softmax(dim=1)[0]
    change = 1 - (p[:, 1:] * p[:, :-1]).sum(0)  # frames 1, 2
    target = torch.tensor([1.0, 1.0])  # hard targets: frames 1 and 2 border the change at 2
    expected = torch.nn.functional.binary_cross_entropy(change, target)
    assert boundary_loss(logits, labels, multi_label=False).item() == pytest.approx(expected.item(), rel=1e-5)
    # MS-TCN/DiffAct smoothing: mean of min(16, (log p_t - log p_{t-1})^2) over classes and frames.
    logp = logits.log_softmax(dim=1)
    expected = ((logp[..., 1:] - logp[..., :-1]) ** 2).clamp(max=16).mean()
    assert smoothness_loss(logits, multi_label=False).item() == pytest.approx(expected.item(), rel=1e-6)


def test_loss_terms_and_weights_are_diffacts():
    cfg = tiny_model_config()
    lc = cfg.loss
    assert (lc.encoder_weight, lc.decoder_weight, lc.smooth_weight, lc.boundary_weight) == (0.5, 0.5, 0.1, 0.1)
    model = HopaDIFF(cfg)
    g = torch.Generator().manual_seed(0)
    h, p = torch.randn(2, 16, 24, generator=g), torch.randn(2, 16, 24, generator=g)
    y = (torch.rand(2, 5, 24, generator=g) < 0.3).float()
    parts = model.training_losses(h, p, y, generator=torch.Generator().manual_seed(1))
    assert set(parts) == {"encoder_cls", "encoder_smooth", "decoder_cls", "decoder_smooth", "boundary", "total"}
    total = 0.5 * parts["encoder_cls"] + 0.1 * parts["encoder_smooth"] + 0.5 * parts["decoder_cls"]
    total = total + 0.1 * parts["decoder_smooth"] + 0.1 * parts["boundary"]
    assert parts["total"].item() == pytest.approx(total.item(), rel=1e-6)
    assert all(parts[k].item() > 0 for k in parts)


SWITCHES = [
    {"condition_injection": "qk+residual"},
    {"feature_layers": [-1, 1, 3, -2]},
    {"fusion": "partial"},
    {"fusion": "confidence"},
    {"fusion": "learned"},
    {"fusion": "confidence", "multi_label": False},
    {"fusion": "learned", "multi_label": False, "condition_injection": "qk+residual"},
]


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_switches_train_every_parameter_and_predict(switch):
    switch = dict(switch)
    layers = switch.pop("feature_layers", None)
    cfg = tiny_model_config(**switch)
    if layers is not None:  # DiffAct's -1 (input features) and -2 (encoder predictions)
        cfg.encoder.feature_layer_indices = layers
    model = HopaDIFF(cfg).train()
    g = torch.Generator().manual_seed(0)
    h, p = torch.randn(4, 16, 40, generator=g), torch.randn(4, 16, 40, generator=g)
    y = (torch.rand(4, 5, 40, generator=g) < 0.3).float() if cfg.multi_label else torch.randint(0, 5, (4, 40))
    model.training_losses(h, p, y, generator=torch.Generator().manual_seed(3))["total"].backward()
    missing = [n for n, q in model.named_parameters() if q.grad is None or not q.grad.abs().sum() > 0]
    assert not missing, missing
    out = model.predict(h, p, steps=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 5, 40) and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    branches = model.predict(
        h, p, steps=3, generator=torch.Generator().manual_seed(0), return_branches=True, all_branches=True
    )
    if switch.get("fusion") == "partial":
        assert torch.equal(out, branches[:, model.branch_names.index("partial")])
    lo, hi = branches.amin(dim=1), branches.amax(dim=1)
    assert (out >= lo - 1e-6).all() and (out <= hi + 1e-6).all(), "a fusion is a per-class mix of the branches"


def test_residual_injection_adds_the_condition_to_every_layer_input():
    cond_dim = None
    terms = {}
    for injection in ("qk", "qk+residual"):
        model = HopaDIFF(tiny_model_config(condition_injection=injection)).eval()
        cond_dim = model.decoder.cond_in.in_channels * model.decoder_groups
        terms[injection] = model._project_condition(torch.randn(1, cond_dim, 16))
    assert all(res is None for _, res in terms["qk"])
    residual = [res for _, res in terms["qk+residual"]]
    assert len(residual) == 3 and all(r.shape == (1, 2 * 8, 16) and r.abs().sum() > 0 for r in residual)


def test_unknown_switch_values_are_named():
    with pytest.raises(ValueError, match="model.fusion must be one of"):
        HopaDIFF(tiny_model_config(fusion="max"))
    with pytest.raises(ValueError, match="decoder.condition_injection must be one of"):
        HopaDIFF(tiny_model_config(condition_injection="film"))
