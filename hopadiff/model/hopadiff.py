"""HopaDIFF: two branches (holistic full-frame, partial target-crop), each with its own
encoder, HP-xLSTM half, Fourier condition and denoising decoder; the final probabilities of
the two reverse diffusion chains are fused (``model.fusion``: averaged in the paper).

Public API (used by the trainer and the ROS node):
  model.training_losses(holistic, partial, labels, visible=None) -> dict of scalar tensors
  model.predict(holistic, partial, visible=None, steps=None, eta=None, generator=None) -> (B, C, W)
holistic / partial: (B, D, W) float; labels: (B, C, W) multi-hot float (multi-label) or (B, W)
int64 (single-label); visible: (B, W) bool, frames where the target person was seen (the
partial features of unseen frames are zeroed, never replaced by holistic ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..engines import EngineRunner
from .conditions import CONDITIONS, condition_mask
from .ddim import DDIMSampler
from .decoder import Decoder
from .encoder import Encoder
from .fourier import FourierCondition, dct2_unnormalised, low_pass
from .fusion import Fusion
from .layers import cat_groups
from .losses import boundary_loss, classification_loss, probabilities, smoothness_loss
from .schedules import make_betas
from .xlstm import HPXLSTM

BRANCHES = {"both": ("holistic", "partial"), "holistic": ("holistic",), "partial": ("partial",)}
CONDITION_SOURCES = ("features+fourier", "xlstm")
FOURIER_OPERATORS = ("lowpass", "dct_add")
DECODER_INPUTS = ("raw", "clamp01")


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


class HopaDIFF(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        ab = cfg.ablation
        if ab.branches not in BRANCHES:
            raise ValueError(f"ablation.branches must be one of {', '.join(BRANCHES)}, got {ab.branches!r}")
        dc = cfg.diffusion
        for kind in dc.condition_types:
            _check_choice("each of diffusion.condition_types", kind, CONDITIONS)
        if len(dc.condition_probs) != len(dc.condition_types) or min(dc.condition_probs, default=-1) < 0:
            raise ValueError(
                f"diffusion.condition_probs needs one non-negative value per condition type "
                f"{dc.condition_types}, got {dc.condition_probs}"
            )
        _check_choice("model.condition", cfg.condition, CONDITION_SOURCES)
        _check_choice("fourier.operator", cfg.fourier.operator, FOURIER_OPERATORS)
        _check_choice("diffusion.decoder_input", dc.decoder_input, DECODER_INPUTS)
        _check_choice("diffusion.timestep_spacing", dc.timestep_spacing, ("linspace", "diffact"))
        self.cfg = cfg
        self.branch_names = BRANCHES[ab.branches]
        G = self.num_branches = len(self.branch_names)
        self.encoder = Encoder(cfg.encoder, cfg.feature_dim, cfg.num_classes, G, cfg.multi_label)
        feat = self.encoder.out_channels
        self.xlstm = HPXLSTM(cfg.xlstm, feat, G, cross=ab.use_cross_gate and G == 2) if ab.use_xlstm else None
        # "features+fourier" (this project): [features ; projected low-pass of the xLSTM output].
        # "xlstm" (the authors): the xLSTM output of (features + a Fourier transform of them).
        if cfg.fourier.operator == "dct_add" and cfg.condition != "xlstm":
            raise ValueError("fourier.operator dct_add is the authors' construction: it needs model.condition: xlstm")
        if cfg.condition == "xlstm":
            self.condition = None
            cond_dim = feat
        else:
            self.condition = FourierCondition(cfg.fourier, feat, G, use_low_pass=ab.use_fourier)
            cond_dim = feat + cfg.fourier.condition_dim
        self.decoder_groups = 1 if ab.shared_decoder else G
        self.decoder = Decoder(cfg.decoder, cfg.num_classes, cond_dim, self.decoder_groups)
        self.fusion = Fusion(cfg.fusion, self.branch_names, cfg.num_classes, cfg.multi_label)
        self.sampler = DDIMSampler(make_betas(cfg.diffusion.schedule, cfg.diffusion.num_train_timesteps))
        weights = cfg.loss.class_weights
        if weights is not None and len(weights) != cfg.num_classes:
            raise ValueError(f"loss.class_weights has {len(weights)} values for {cfg.num_classes} classes")
        self.register_buffer(
            "class_weights",
            None if weights is None else torch.tensor(weights, dtype=torch.float32),
            persistent=False,
        )
        self.set_engine("eager")

    # ----------------------------------------------------------------- shared pieces
    def _check_inputs(self, holistic, partial, visible):
        D = self.cfg.feature_dim
        if holistic.ndim != 3 or holistic.shape[1] != D:
            raise ValueError(f"holistic features must be (B, {D}, W), got {tuple(holistic.shape)}")
        if partial.shape != holistic.shape:
            raise ValueError(f"partial features {tuple(partial.shape)} must match holistic {tuple(holistic.shape)}")
        B, _, W = holistic.shape
        if W < 2:
            raise ValueError(f"windows need at least 2 frames, got W={W}")
        if visible is not None and tuple(visible.shape) != (B, W):
            raise ValueError(f"visible must be (B, W) = {(B, W)}, got {tuple(visible.shape)}")

    def _branch_input(self, holistic, partial, visible):
        """(B, G*D, W), branch-major channels."""
        if visible is not None:
            partial = partial * visible[:, None, :].to(partial.dtype)
        inputs = {"holistic": holistic, "partial": partial}
        return torch.cat([inputs[n] for n in self.branch_names], dim=1)

    def encode(self, holistic, partial, visible=None):
        """Encoder + HP-xLSTM + Fourier condition, once per window.

        -> encoder logits (B, G*C, W), decoder condition (B, G*Fcond, W): this project's
        [encoder features ; low-pass of the xLSTM output], or (``model.condition: xlstm``) the
        authors' xLSTM output of (features + their Fourier transform) alone: their unnormalised
        full DCT-II (``fourier.operator: dct_add``) or the orthonormal low-pass (``lowpass``).
        """
        G = self.num_branches
        x = self._branch_input(holistic, partial, visible).to(self.decoder.conv_in.weight.dtype)
        enc_logits, feats = self.encoder(x)
        if self.condition is None:  # the authors: xLSTM(features + Fourier(features)) is the condition
            cond, fourier = feats, self.cfg.fourier
            if self.cfg.ablation.use_fourier:
                dct_add = fourier.operator == "dct_add"
                cond = feats + (dct2_unnormalised(feats) if dct_add else low_pass(feats, fourier.num_coefficients))
            if self.xlstm is not None:
                cond = torch.cat(self.xlstm(list(cond.chunk(G, dim=1))), dim=1)
            return enc_logits, cond
        z = feats
        if self.xlstm is not None:
            z = torch.cat(self.xlstm(list(feats.chunk(G, dim=1))), dim=1)
        return enc_logits, cat_groups(feats, self.condition(z), G)

    def _decoder_input(self, x_t):
        """What the decoder reads of x_t: as is, or (``decoder_input: clamp01``, DiffAct) clamped to
        +-scale and mapped to [0, 1]."""
        if self.cfg.diffusion.decoder_input == "raw":
            return x_t
        scale = self.cfg.diffusion.scale
        return (x_t.clamp(-scale, scale) / scale + 1) / 2

    def _decode(self, x_t, t, cond_proj):
        """Decoder over all branches: x_t (B, G*C, W) -> x0 logits (B, G*C, W)."""
        B, _, W = x_t.shape
        G = self.num_branches
        if self.decoder_groups == G:
            return self.decoder(x_t, t, cond_proj)
        # Shared decoder (ablation): the branches are folded into the batch.
        out = self.decoder(x_t.reshape(B * G, -1, W), t.repeat_interleave(G), cond_proj)
        return out.reshape(B, -1, W)

    def compile_decoder(self, enabled: bool = True) -> HopaDIFF:
        """Run ``predict``'s denoising step through torch.compile (inductor): ``set_engine("compile")``.

        Inductor fuses the step's ~200 small operators (docs/benchmarks.md). Symbolic shapes: one
        compile for a batch of one, one for larger batches, any length, done by ``warm_up`` (tens
        of seconds on 2 CPU cores; artifacts saved for the next configure). Returns self.
        """
        return self.set_engine("compile" if enabled else "eager")

    def set_engine(self, engine: str, cache_dir=None, log=print) -> HopaDIFF:
        """How ``predict`` runs: ``eager``, ``compile`` (the denoising step) or ``onnxruntime`` (the
        window's encoders + condition and the denoising step), see hopadiff.engines; ``cache_dir``
        holds what they build, ``log`` gets one line whenever an engine falls back to eager. Returns self."""
        object.__setattr__(self, "_runner", EngineRunner(engine, cache_dir, log))  # not a submodule
        return self

    @property
    def engine_report(self) -> str:
        """What runs the windows, as the node's configure logs it."""
        return self._runner.report

    def warm_up(self, window: int, batch_sizes=(1, 2)) -> None:
        """One short prediction per batch size at ``window`` frames: a compiled decoder compiles
        (an onnxruntime engine exports or loads) here rather than on the first live window."""
        self._runner.warm_up(self, window, batch_sizes)

    def _project_condition(self, cond):
        """Per-layer decoder condition terms, computed once per window."""
        B, _, W = cond.shape
        if self.decoder_groups == self.num_branches:
            return self.decoder.encode_condition(cond)
        return self.decoder.encode_condition(cond.reshape(B * self.num_branches, -1, W))

    def _per_branch(self, x):
        """(B, G*C, W) -> (B, G, C, W)."""
        B, _, W = x.shape
        return x.reshape(B, self.num_branches, -1, W)

    def _probs(self, logits):
        """(B, G*C, W) logits -> (B, G, C, W) probabilities (softmax, if any, over each branch's classes)."""
        per_branch = self._per_branch(logits)
        return probabilities(per_branch.flatten(0, 1), self.cfg.multi_label).reshape(per_branch.shape)

    # ----------------------------------------------------------------- training
    def _target_probs(self, labels, W):
        C = self.cfg.num_classes
        if self.cfg.multi_label:
            if labels.ndim != 3 or labels.shape[1:] != (C, W) or labels.is_floating_point() is False:
                raise ValueError(
                    f"multi-label labels must be float (B, {C}, {W}), got {tuple(labels.shape)} {labels.dtype}"
                )
            return labels.float()
        if labels.ndim != 2 or labels.shape[1] != W or labels.dtype != torch.long:
            raise ValueError(f"single-label labels must be int64 (B, {W}), got {tuple(labels.shape)} {labels.dtype}")
        if labels.min() < 0 or labels.max() >= C:
            raise ValueError(f"label ids must be in 0..{C - 1}, got {int(labels.min())}..{int(labels.max())}")
        return F.one_hot(labels, C).permute(0, 2, 1).float()

    def _condition_mask(self, target, generator=None):
        """(B, 1, W) multiplier implementing one random training condition per sample."""
        dc = self.cfg.diffusion
        return condition_mask(target, dc.condition_types, dc.condition_probs, self.cfg.loss.boundary_smooth, generator)

    def training_losses(self, holistic, partial, labels, visible=None, generator=None):
        """One training objective evaluation; returns scalar losses including "total"."""
        self._check_inputs(holistic, partial, visible)
        B, _, W = holistic.shape
        G, cfg = self.num_branches, self.cfg
        target = self._target_probs(labels, W)  # (B, C, W) in [0, 1]
        enc_logits, cond = self.encode(holistic, partial, visible)
        cond = cond * self._condition_mask(target, generator).to(cond.dtype)
        cond_proj = self._project_condition(cond)

        scale = cfg.diffusion.scale
        x0 = ((2 * target - 1) * scale).repeat(1, G, 1)  # (B, G*C, W)
        t = torch.randint(0, self.sampler.num_train_timesteps, (B,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        x_t = self.sampler.add_noise(x0, noise, t)
        dec_logits = self._decode(self._decoder_input(x_t).to(cond.dtype), t, cond_proj)

        enc_b, dec_b = self._per_branch(enc_logits).float(), self._per_branch(dec_logits).float()  # (B, G, C, W)
        multi, weights, lc = cfg.multi_label, self.class_weights, cfg.loss
        sigma = lc.boundary_smooth
        terms = {  # name -> (weight, loss of one branch g); each averaged over the branches
            "encoder_cls": (lc.encoder_weight, lambda g: classification_loss(enc_b[:, g], labels, multi, weights)),
            "encoder_smooth": (lc.smooth_weight, lambda g: smoothness_loss(enc_b[:, g], multi)),
            "decoder_cls": (lc.decoder_weight, lambda g: classification_loss(dec_b[:, g], labels, multi, weights)),
            "decoder_smooth": (lc.smooth_weight, lambda g: smoothness_loss(dec_b[:, g], multi)),
            "boundary": (
                lc.boundary_weight,
                lambda g: boundary_loss(dec_b[:, g], target if multi else labels, multi, sigma),
            ),
        }
        parts = {
            name: sum(fn(g) for g in range(G)) / G if weight > 0 else enc_b.new_zeros(())
            for name, (weight, fn) in terms.items()
        }
        parts["total"] = sum(weight * parts[name] for name, (weight, _) in terms.items())
        if self.fusion.logits is not None:
            # Trains only the fusion weights: the branches' x0 estimates are detached.
            fused = self.fusion(probabilities(dec_b.detach(), multi)).clamp(1e-6, 1 - 1e-6)
            if multi:
                parts["fusion"] = F.binary_cross_entropy(fused, target)
            else:
                parts["fusion"] = F.nll_loss(fused.log(), labels)
            parts["total"] = parts["total"] + parts["fusion"]
        return parts

    def forward(self, holistic, partial, labels, visible=None, generator=None):
        """The training objective (so DistributedDataParallel's hooks see it); see training_losses."""
        return self.training_losses(holistic, partial, labels, visible, generator)

    # ----------------------------------------------------------------- inference
    @torch.inference_mode()
    def predict(
        self, holistic, partial, visible=None, steps=None, eta=None, generator=None, return_branches=False,
        init=None, init_steps: int = 0, all_branches: bool = False,
    ):  # fmt: skip
        """Reverse diffusion for all branches at once; returns (B, C, W) probabilities in [0, 1].

        ``steps``/``eta`` default to the config. With eta=0 the only randomness is the start
        noise, drawn from ``generator``: the same generator seed gives the same output.

        Only the decoders of the branches the fusion reads run (``fusion: partial``: the partial
        branch's; every branch's encoder still runs, as the xLSTM mixes them into the condition):
        the output is the same as running all of them, with half the decoder's work. With
        ``return_branches`` the skipped branches' probabilities are NaN, unless ``all_branches``
        (diagnostics: each branch alone).

        Warm start (SDEdit-style, for streaming): ``init`` (B, G, C, W) branch probabilities (NaN
        where unknown, e.g. frames new since the previous window) is taken as the clean estimate,
        noised to the step ``init_steps`` before the end of the ``steps`` schedule, and only those
        last ``init_steps`` steps are run. Unknown frames start from x0 = 0 (probability 0.5).
        """
        self._check_inputs(holistic, partial, visible)
        was_training = self.training
        self.eval()
        try:
            steps = self.cfg.diffusion.sampling_steps if steps is None else int(steps)
            eta = self.cfg.diffusion.eta if eta is None else float(eta)
            cond = self._runner.condition(self, holistic, partial, visible)
            G, C = self.num_branches, self.cfg.num_classes
            run = list(range(G)) if all_branches else self.fusion.branches_read(G)
            B, _, W = holistic.shape
            if len(run) < G and self.decoder_groups == G:
                subset, decode = self._runner.subset_step(self, run)
                cond = cond.reshape(B, G, -1, W)[:, run].reshape(B, -1, W)
                cond_proj = subset.encode_condition(cond)
            else:
                run = list(range(G))
                decode = self._runner.full_step(self)
                cond_proj = self._project_condition(cond)
            dtype = cond.dtype
            shape = (B, G * C, W)
            x = torch.randn(shape, generator=generator, device=cond.device, dtype=torch.float32)
            scale = self.cfg.diffusion.scale
            timesteps = self.sampler.set_timesteps(steps, self.cfg.diffusion.timestep_spacing).tolist()
            if init is not None:
                k = min(max(int(init_steps), 1), len(timesteps))
                timesteps = timesteps[-k:]
                x0 = (2 * torch.nan_to_num(init.float(), nan=0.5).flatten(1, 2) - 1) * scale
                t0 = torch.full((B,), timesteps[0], device=x.device, dtype=torch.long)
                x = self.sampler.add_noise(x0.to(x.device), x, t0)  # the start noise drawn above
            # The chain runs over every branch's x (the same noise draws whichever decoders run);
            # a skipped branch's estimate stays x0 = 0 and its probabilities NaN.
            probs = torch.full((B, G, C, W), float("nan"), device=x.device)
            for t in timesteps:
                t_batch = torch.full((B,), t, device=x.device, dtype=torch.long)
                x_run = x.reshape(B, G, C, W)[:, run].reshape(B, -1, W)
                logits = decode(self._decoder_input(x_run).to(dtype), t_batch, cond_proj).float()
                probs[:, run] = probabilities(logits.reshape(B * len(run), C, W), self.cfg.multi_label).reshape(
                    B, len(run), C, W
                )
                x0 = (2 * torch.nan_to_num(probs, nan=0.5).flatten(1, 2) - 1) * scale
                x = self.sampler.step(x0, t, x, eta=eta, generator=generator)
            return probs if return_branches else self.fusion(probs)
        finally:
            self.train(was_training)

    @torch.inference_mode()
    def encoder_probabilities(self, holistic, partial, visible=None):
        """The encoders' auxiliary heads as (B, G, C, W) probabilities: the simplest baseline the
        diffusion output is checked against."""
        self._check_inputs(holistic, partial, visible)
        was_training = self.training
        self.eval()
        try:
            enc_logits, _ = self.encode(holistic, partial, visible)
            return self._probs(enc_logits.float())
        finally:
            self.train(was_training)
