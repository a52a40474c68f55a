"""HP-xLSTM: holistic-partial mLSTM with cross-input gate attention.

mLSTM as in Beck et al., "xLSTM: Extended Long Short-Term Memory" (2024), sec. 2.3:
  C_t = f_t C_{t-1} + i_t v_t k_t^T            matrix memory          (B, NH, DH, DH)
  n_t = f_t n_{t-1} + i_t k_t                  normaliser             (B, NH, DH)
  h_t = o_t * (C_t q_t) / max(|n_t^T q_t|, 1)  (with the stabiliser below)
  i_t = exp(i~_t), f_t = sigmoid(f~_t), log-space stabiliser m_t = max(log f_t + m_{t-1}, i~_t).
Both a parallel form (training, whole window at once) and a recurrent ``step`` (streaming)
are implemented; ``test_xlstm`` checks they agree. The memory starts empty for every window
(the state is never carried across samples).

Cross-input gate: before the exponential, each branch's input-gate pre-activations
i~^a get a term read from the OTHER branch: causal multi-head attention whose queries come
from branch a, keys from branch b and values are b's gate pre-activations,
  i~'^a_t = i~^a_t + alpha_a * sum_{s<=t} softmax_s(q^a_t . k^b_s) i~^b_s,
in both directions (holistic <- partial and partial <- holistic). So each branch decides
what to write into memory with the other in view. The attention is causal in time so the
recurrent form can compute it online.

Shapes: B batch, S frames (= W), NH heads, DH head dim, H = NH*DH, Fin block width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..config import XLSTMConfig

EPS = 1e-6
# Query rows per block of the parallel forms: their (rows x S) score matrices are the only
# memory that grows with S, so a whole 2000-frame video costs memory linear in its length.
# A traced graph (torch.export for ONNX) has one block of all S rows: the number of blocks
# would depend on the symbolic length.
ROW_BLOCK = 512


def _row_blocks(S, row_block: int) -> list[tuple[int, int]]:
    """[(first row, end row)] of the query-row blocks; one block when traced."""
    if torch.compiler.is_compiling():
        return [(0, S)]
    return [(a, min(S, a + row_block)) for a in range(0, S, row_block)]


def _causal(rows: torch.Tensor, S: int) -> torch.Tensor:
    """(R, S) bool: frame s is visible from query frame ``rows[r]`` (s <= t)."""
    return torch.arange(S, device=rows.device)[None, :] <= rows[:, None]


def mlstm_parallel(q, k, v, i_pre, log_f, row_block: int = ROW_BLOCK):
    """q, k, v (B, NH, S, DH); i_pre, log_f (B, NH, S) -> h (B, NH, S, DH).

    Computed ``row_block`` query frames at a time (each block only needs the frames up to its
    last row), so memory is O(S * row_block) instead of O(S^2)."""
    S, DH = q.shape[-2], q.shape[-1]
    cum = torch.cumsum(log_f, dim=-1)  # (B, NH, S)
    src = cum - i_pre  # log d[t, s] = cum[t] - (cum[s] - i~[s]); per frame, not per (t, s) pair
    q = q / math.sqrt(DH)  # scaled once, not each (R x b) score matrix
    out = []
    # The (R x b) matrices are the cost at long windows (W=1024: most of the xLSTM's time), so
    # each is passed over as few times as the formula allows: the per-row normaliser divides
    # the (R x DH) output, not the scores, which is the same number.
    for a, b in _row_blocks(S, row_block):
        rows = torch.arange(a, b, device=q.device)
        log_d = (cum[..., a:b, None] - src[..., None, :b]).masked_fill(
            ~_causal(rows, b), float("-inf")
        )  # (B, NH, R, b)
        m = log_d.amax(dim=-1, keepdim=True)  # (B, NH, R, 1) stabiliser
        scores = (q[..., a:b, :] @ k[..., :b, :].transpose(-1, -2)) * torch.exp(log_d - m)  # (B, NH, R, b)
        norm = torch.maximum(scores.sum(-1, keepdim=True).abs(), torch.exp(-m))
        out.append((scores @ v[..., :b, :]) / (norm + EPS))
    return torch.cat(out, dim=-2)


def mlstm_step(q, k, v, i_pre, log_f, state):
    """One step. q, k, v (B, NH, DH); i_pre, log_f (B, NH); state (C, n, m) or None."""
    B, NH, DH = q.shape
    if state is None:
        C = q.new_zeros(B, NH, DH, DH)
        n = q.new_zeros(B, NH, DH)
        m = q.new_full((B, NH), float("-inf"))
    else:
        C, n, m = state
    m_new = torch.maximum(log_f + m, i_pre)  # (B, NH)
    i_g = torch.exp(i_pre - m_new)[..., None]
    f_g = torch.exp(log_f + m - m_new)[..., None]
    k = k / math.sqrt(DH)
    C = f_g[..., None] * C + i_g[..., None] * (v[..., :, None] * k[..., None, :])  # (B, NH, DH_v, DH_k)
    n = f_g * n + i_g * k
    num = (C @ q[..., None]).squeeze(-1)  # (B, NH, DH)
    den = torch.maximum((n * q).sum(-1, keepdim=True).abs(), torch.exp(-m_new)[..., None])
    return num / (den + EPS), (C, n, m_new)


class MLSTMBranch(nn.Module):
    """Projections of one branch's mLSTM block (pre-norm, up-projection, gates, down-projection)."""

    def __init__(self, cfg: XLSTMConfig, in_dim: int):
        super().__init__()
        H, NH = cfg.hidden_dim, cfg.num_heads
        assert H % NH == 0, f"xlstm.hidden_dim {H} not divisible by num_heads {NH}"
        self.num_heads, self.head_dim = NH, H // NH
        self.norm = nn.LayerNorm(in_dim)
        self.up = nn.Linear(in_dim, H)
        self.qkv = nn.Linear(H, 3 * H)
        self.igate = nn.Linear(H, NH)
        self.fgate = nn.Linear(H, NH)
        self.ogate = nn.Linear(H, H)
        self.head_norm = nn.GroupNorm(NH, H)  # per-head normalisation of the cell output
        self.down = nn.Linear(H, in_dim)
        with torch.no_grad():
            self.fgate.bias.fill_(cfg.forget_bias_init)
            self.igate.bias.zero_()

    def project(self, x):
        """x (B, S, Fin) -> u (B, S, H), q/k/v (B, NH, S, DH), i_pre and log_f (B, NH, S)."""
        u = self.up(self.norm(x))
        q, k, v = rearrange(self.qkv(u), "b s (three nh dh) -> three b nh s dh", three=3, nh=self.num_heads)
        i_pre = self.igate(u).transpose(1, 2)
        log_f = F.logsigmoid(self.fgate(u)).transpose(1, 2)
        return u, q, k, v, i_pre, log_f

    def output(self, x, u, h):
        """Residual output: x (B, S, Fin), u (B, S, H), h (B, NH, S, DH) -> (B, S, Fin)."""
        B = x.shape[0]
        h = self.head_norm(rearrange(h, "b nh s dh -> (b s) (nh dh)"))  # GroupNorm wants (N, C)
        h = rearrange(h, "(b s) hd -> b s hd", b=B)
        return x + self.down(torch.sigmoid(self.ogate(u)) * h)


class CrossInputGate(nn.Module):
    """Causal attention from branch a (queries) to branch b (keys, gate values), per head."""

    def __init__(self, cfg: XLSTMConfig):
        super().__init__()
        NH, Da = cfg.num_heads, cfg.gate_attention_dim
        self.num_heads, self.dim = NH, Da
        self.query = nn.Linear(cfg.hidden_dim, NH * Da)
        self.key = nn.Linear(cfg.hidden_dim, NH * Da, bias=False)  # a key bias is softmax-invariant
        self.alpha = nn.Parameter(torch.full((NH,), 0.5))

    def heads(self, proj, u):
        return rearrange(proj(u), "b s (nh da) -> b nh s da", nh=self.num_heads)

    def forward(self, u_a, u_b, i_b, row_block: int = ROW_BLOCK):
        """u_a, u_b (B, S, H); i_b (B, NH, S) -> term added to i~^a (B, NH, S), in blocks of query rows."""
        q, k = self.heads(self.query, u_a) / math.sqrt(self.dim), self.heads(self.key, u_b)
        S = q.shape[-2]
        out = []
        for a, b in _row_blocks(S, row_block):
            scores = q[..., a:b, :] @ k[..., :b, :].transpose(-1, -2)  # (B, NH, R, b)
            causal = _causal(torch.arange(a, b, device=q.device), b)
            attn = scores.masked_fill(~causal, float("-inf")).softmax(-1)
            out.append((attn @ i_b[..., :b, None]).squeeze(-1))
        return self.alpha[:, None] * torch.cat(out, dim=-1)

    def step(self, u_a_t, keys_b, gates_b):
        """u_a_t (B, H); keys_b (B, NH, s, Da) and gates_b (B, NH, s) of b up to now -> (B, NH)."""
        B = u_a_t.shape[0]
        q = self.query(u_a_t).reshape(B, self.num_heads, 1, self.dim)
        attn = (q @ keys_b.transpose(-1, -2) / math.sqrt(self.dim)).softmax(-1)  # (B, NH, 1, s)
        return self.alpha * (attn.squeeze(2) * gates_b).sum(-1)  # (B, NH)


class HPXLSTM(nn.Module):
    """One mLSTM block per branch, gates crossed when there are two branches and cross=True.

    forward: list of G tensors (B, Fin, W) -> list of G tensors (B, Fin, W).
    """

    def __init__(self, cfg: XLSTMConfig, in_dim: int, branches: int, cross: bool):
        super().__init__()
        if cross and branches != 2:
            raise ValueError(f"the cross-input gate needs two branches, got {branches}")
        self.branches = nn.ModuleList(MLSTMBranch(cfg, in_dim) for _ in range(branches))
        # cross[a] lets branch a read branch 1-a.
        self.cross = nn.ModuleList(CrossInputGate(cfg) for _ in range(2)) if cross else None

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [x.transpose(1, 2) for x in xs]  # (B, W, Fin)
        proj = [br.project(x) for br, x in zip(self.branches, xs, strict=True)]
        i_pre = [p[4] for p in proj]
        if self.cross is not None:
            i_pre = [i_pre[a] + self.cross[a](proj[a][0], proj[1 - a][0], proj[1 - a][4]) for a in range(2)]
        outs = []
        for a, (br, x, (u, q, k, v, _, log_f)) in enumerate(zip(self.branches, xs, proj, strict=True)):
            h = mlstm_parallel(q, k, v, i_pre[a], log_f)
            outs.append(br.output(x, u, h).transpose(1, 2))
        return outs

    def step(self, xs_t: list[torch.Tensor], state: dict | None = None) -> tuple[list[torch.Tensor], dict]:
        """Recurrent form: one frame per branch, xs_t G x (B, Fin) -> G x (B, Fin), new state.

        ``state`` holds each branch's (C, n, m) and, for the cross gate, the keys and gate
        pre-activations seen so far in this window. Pass None at the start of a window.
        """
        state = state or {"cell": [None] * len(self.branches), "keys": [None, None], "gates": [None, None]}
        proj = [br.project(x[:, None]) for br, x in zip(self.branches, xs_t, strict=True)]  # S = 1
        i_pre = [p[4][..., 0] for p in proj]  # (B, NH)
        if self.cross is not None:
            for b in range(2):
                k_new = self.cross[1 - b].heads(self.cross[1 - b].key, proj[b][0])  # (B, NH, 1, Da)
                keys, gates = state["keys"][b], state["gates"][b]
                state["keys"][b] = k_new if keys is None else torch.cat([keys, k_new], dim=2)
                g_new = i_pre[b][..., None]
                state["gates"][b] = g_new if gates is None else torch.cat([gates, g_new], dim=2)
            i_pre = [
                i_pre[a] + self.cross[a].step(proj[a][0][:, 0], state["keys"][1 - a], state["gates"][1 - a])
                for a in range(2)
            ]
        outs = []
        for a, (br, x, (u, q, k, v, _, log_f)) in enumerate(zip(self.branches, xs_t, proj, strict=True)):
            h, state["cell"][a] = mlstm_step(
                q[:, :, 0], k[:, :, 0], v[:, :, 0], i_pre[a], log_f[..., 0], state["cell"][a]
            )
            outs.append(br.output(x[:, None], u, h[:, :, None])[:, 0])
        return outs, state
