"""HP-xLSTM: the parallel form equals the step-by-step recurrence; memory is per window."""

from __future__ import annotations

import torch

from hopadiff.config import XLSTMConfig
from hopadiff.model.xlstm import HPXLSTM, mlstm_parallel, mlstm_step

TOL = {"rtol": 1e-4, "atol": 1e-5}  # float64 agreement is ~1e-12; float32 accumulates ~1e-6 over 50 steps


def test_mlstm_parallel_equals_recurrent_float64():
    g = torch.Generator().manual_seed(0)
    B, NH, S, DH = 2, 3, 50, 8
    q, k, v = (torch.randn(B, NH, S, DH, generator=g, dtype=torch.float64) for _ in range(3))
    i_pre = 3 * torch.randn(B, NH, S, generator=g, dtype=torch.float64)  # large gates exercise the stabiliser
    log_f = torch.nn.functional.logsigmoid(2 * torch.randn(B, NH, S, generator=g, dtype=torch.float64))
    par = mlstm_parallel(q, k, v, i_pre, log_f)
    # Row blocks (linear memory for whole videos) change nothing: 7 does not divide 50.
    torch.testing.assert_close(mlstm_parallel(q, k, v, i_pre, log_f, row_block=7), par, rtol=1e-12, atol=1e-14)
    state, steps = None, []
    for t in range(S):
        h, state = mlstm_step(q[:, :, t], k[:, :, t], v[:, :, t], i_pre[:, :, t], log_f[:, :, t], state)
        steps.append(h)
    torch.testing.assert_close(par, torch.stack(steps, dim=2), rtol=1e-10, atol=1e-12)


def test_hpxlstm_block_parallel_equals_step_with_cross_gate():
    torch.manual_seed(0)
    cfg = XLSTMConfig(hidden_dim=16, num_heads=2, gate_attention_dim=4)
    block = HPXLSTM(cfg, in_dim=12, branches=2, cross=True).eval()
    B, W = 2, 30
    xs = [torch.randn(B, 12, W), torch.randn(B, 12, W)]
    with torch.no_grad():
        par = block(xs)
        for a in range(2):  # the cross gate in row blocks equals the one-block form
            u_a = block.branches[a].project(xs[a].transpose(1, 2))[0]
            u_b, *_, i_b, _ = block.branches[1 - a].project(xs[1 - a].transpose(1, 2))
            torch.testing.assert_close(block.cross[a](u_a, u_b, i_b, row_block=4), block.cross[a](u_a, u_b, i_b))
        state, outs = None, [[], []]
        for t in range(W):
            o, state = block.step([xs[0][:, :, t], xs[1][:, :, t]], state)
            for a in range(2):
                outs[a].append(o[a])
    for a in range(2):
        torch.testing.assert_close(par[a], torch.stack(outs[a], dim=2), **TOL)


def test_cross_gate_lets_each_branch_see_the_other():
    torch.manual_seed(0)
    cfg = XLSTMConfig(hidden_dim=16, num_heads=2, gate_attention_dim=4)
    crossed = HPXLSTM(cfg, 12, 2, cross=True).eval()
    B, W = 1, 10
    xs = [torch.randn(B, 12, W), torch.randn(B, 12, W)]
    with torch.no_grad():
        a = crossed(xs)
        b = crossed([xs[0], xs[1] + torch.randn(B, 12, W)])  # change only the partial input
    assert not torch.allclose(a[0], b[0]), "holistic output ignores the partial branch"


def test_memory_is_reset_for_every_window():
    """Two calls on the same window give the same output: no state survives a forward."""
    torch.manual_seed(0)
    block = HPXLSTM(XLSTMConfig(hidden_dim=16, num_heads=2, gate_attention_dim=4), 12, 2, cross=True).eval()
    xs = [torch.randn(1, 12, 8), torch.randn(1, 12, 8)]
    with torch.no_grad():
        first = block(xs)
        block([torch.randn(1, 12, 8) * 10, torch.randn(1, 12, 8) * 10])
        again = block(xs)
    for a in range(2):
        assert torch.equal(first[a], again[a])


def test_causality():
    """Frame t's output does not depend on later frames (so the recurrent form can stream)."""
    torch.manual_seed(0)
    block = HPXLSTM(XLSTMConfig(hidden_dim=16, num_heads=2, gate_attention_dim=4), 12, 2, cross=True).eval()
    xs = [torch.randn(1, 12, 12), torch.randn(1, 12, 12)]
    ys = [xs[0].clone(), xs[1].clone()]
    ys[1][:, :, 8:] += torch.randn(1, 12, 4)
    with torch.no_grad():
        a, b = block(xs), block(ys)
    torch.testing.assert_close(a[0][..., :8], b[0][..., :8])
    assert not torch.allclose(a[0][..., 8:], b[0][..., 8:])
