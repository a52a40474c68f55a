"""The onnxruntime engine: a window's two graphs exported with torch.onnx and run by ONNX Runtime.

  window  (holistic, partial, visible) -> the decoder condition: encoders, HP-xLSTM and Fourier
          condition (``HopaDIFF.encode``), once per window;
  step    (x_t, t, the condition's per-layer terms) -> x0 logits: the decoder, once per DDIM step.

Both have dynamic batch (persons) and length. Each export is cached beside the checkpoint in a
file whose name is a hash of what it depends on (weights, config, the export code's version,
torch / onnx versions): a changed checkpoint never reuses a stale export, a second configure
only loads the file. A cached file that does not load, or whose output differs from eager on a
probe input, is exported again. A graph that does not export (an operator torch.onnx cannot
translate) stays eager, said in one line with the exporter's message.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

EXPORT_VERSION = 4  # bump when what is exported changes (3: the window graph beside the step; 4: not optimised)
PARITY_ATOL = 1e-4
MAX_BATCH, MAX_FRAMES = 1024, 1 << 20

# ONNX Runtime's own thread pool, beside torch's. The step's operators are small (a (B, 24, W)
# tensor), so for a few persons splitting them across threads pays less than it costs, and ORT's
# idle threads spin by default, taking the cores from torch's pool that runs the rest of the
# window between steps. Measured (bench_model, W=256, one person, 2-core CPU): a window took
# 220 ms with 2 spinning ORT threads, 114 ms with 2 that do not spin, 100 ms with one (eager 85).
# For many persons the step is large enough to split: the shipped model's W=256 step alone,
# 1 / 2 non-spinning threads: one person 2.5 / 3.1 ms, 3 persons 7.4 / 7.3, 8 persons 21.1 / 17.5.
# So the step has two sessions over the same file: one thread below WIDE_BATCH persons, torch's
# thread count from it. The window graph runs once, with nothing of torch's beside it: torch's
# thread count (8 persons, W=256: 130 ms with one thread, 93 with two).
STEP_THREADS = 1
WIDE_BATCH = 4


class StepGraph(nn.Module):
    """The decoder step as a graph of tensors only: the per-layer condition terms stacked."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, x_t, t, qk, residual=None):
        L = qk.shape[0]
        terms = [(qk[i], None if residual is None else residual[i]) for i in range(L)]
        return self.decoder(x_t, t, terms)


class WindowGraph(nn.Module):
    """What predict reads of ``HopaDIFF.encode``: the decoder condition."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, holistic, partial, visible):
        return self.model.encode(holistic, partial, visible)[1]


def stack_terms(cond_terms) -> tuple[torch.Tensor, torch.Tensor | None]:
    qk = torch.stack([q for q, _ in cond_terms])
    res = None if cond_terms[0][1] is None else torch.stack([r for _, r in cond_terms])
    return qk, res


def content_key(module: nn.Module, config, *extra) -> str:
    """Hash of what an export of ``module`` depends on: weights, ``config``, versions."""
    import onnx

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(f"{extra}|{torch.__version__}|{onnx.__version__}|{EXPORT_VERSION}".encode())
    return h.hexdigest()[:24]


def decoder_key(decoder: nn.Module) -> str:
    return content_key(decoder, vars(decoder.cfg), decoder.groups)


def window_key(model: nn.Module) -> str:
    """The whole model's weights and config: any change to them exports the window graph again."""
    import dataclasses

    return content_key(model, dataclasses.asdict(model.cfg), "window")


def providers_for(device: torch.device, log: Callable[[str], None]) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.type == "cuda":
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if wanted:
            return [*wanted, "CPUExecutionProvider"]
        log(
            "inference_engine onnxruntime: this onnxruntime build has no CUDA or TensorRT provider "
            f"(available: {', '.join(available)}); the graphs run on CPUExecutionProvider "
            "(install onnxruntime-gpu for the GPU)"
        )
    return ["CPUExecutionProvider"]


def _numpy(x: torch.Tensor, dtype=torch.float32) -> np.ndarray:
    return x.detach().to("cpu", dtype).numpy()


# ----------------------------------------------------------------------------- probes
# Each graph's example input for the export (seed 0) and the parity check (seed 1):
# name -> (tensor, its dynamic dimensions).


def _step_probe(decoder, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    p = next(decoder.parameters())
    B, W = 2, 24
    C = decoder.conv_in.in_channels * decoder.groups
    Fc = decoder.cond_in.in_channels * decoder.groups
    x = torch.randn(B, C, W, generator=g).to(p.device, p.dtype)
    t = torch.tensor([3, 40], device=p.device)
    with torch.no_grad():
        qk, res = stack_terms(decoder.encode_condition(torch.randn(B, Fc, W, generator=g).to(p.device, p.dtype)))
    batch, frames = _dims()
    probe = {"x_t": (x, {0: batch, 2: frames}), "t": (t, {0: batch}), "qk": (qk, {1: batch, 3: frames})}
    if res is not None:
        probe["residual"] = (res, {1: batch, 3: frames})
    return probe


def _window_probe(model, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    p = next(model.parameters())
    B, W, D = 2, 24, model.cfg.feature_dim
    hol, par = (torch.randn(B, D, W, generator=g).to(p.device, p.dtype) for _ in range(2))
    visible = (torch.rand(B, W, generator=g) > 0.25).to(p.device, torch.float32)
    batch, frames = _dims()
    return {"holistic": (hol, {0: batch, 2: frames}), "partial": (par, {0: batch, 2: frames}),
            "visible": (visible, {0: batch, 1: frames})}  # fmt: skip


def _dims():
    return torch.export.Dim("batch", min=1, max=MAX_BATCH), torch.export.Dim("frames", min=2, max=MAX_FRAMES)


# ----------------------------------------------------------------------------- export, load, check


def _export(graph: nn.Module, probe: dict, output: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's progress lines and warnings: not the user's business
            torch.onnx.export(
                graph.eval(),
                tuple(tensor for tensor, _ in probe.values()),
                tmp,
                dynamo=True,
                dynamic_shapes={name: dims for name, (_, dims) in probe.items()},
                input_names=list(probe),
                output_names=[output],
                external_data=False,
                verbose=False,
                # onnxscript's optimiser: ONNX Runtime optimises the graph itself when it loads it.
                # Measured (rhas133_blip2, 2-core CPU): the two exports 44 -> 28 s, a W=256 step
                # 2.69 / 2.70 ms and the window graph 12.0 / 12.5 ms with / without it.
                optimize=False,
            )
        os.replace(tmp, path)  # never a half-written export under the final name
    finally:
        quiet.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _session(path: Path, providers: list[str], threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=providers)


def _parity_error(graph: nn.Module, session, probe: dict) -> float:
    with torch.no_grad():
        ref = graph(*(tensor for tensor, _ in probe.values())).float()
    feed = {name: _numpy(x, torch.int64 if name == "t" else torch.float32) for name, (x, _) in probe.items()}
    (out,) = session.run(None, feed)
    return float(np.abs(out - _numpy(ref)).max())


def missing_module(log: Callable[[str], None]) -> bool:
    """True (after one line) if onnxruntime, onnx or onnxscript is not installed."""
    for module in ("onnxruntime", "onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            log(f"inference_engine onnxruntime: {module} is not installed (pip install {module}); running eager")
            return True
    return False


def export_error(error: BaseException) -> str:
    """The exporter's root cause in one line (it names the operator that has no ONNX translation):
    the innermost exception of the chain, its first line without terminal colours."""
    import re

    while error.__cause__ is not None:
        error = error.__cause__
    first = re.sub(r"\x1b\[[0-9;]*m", "", (str(error).strip().splitlines() or [""])[0])
    return f"{type(error).__name__}: {first[:300]}"


def exported_session(what: str, graph: nn.Module, probe, path: Path, output: str, providers, threads, log):
    """An ORT session of ``graph`` (``probe(seed)`` its example inputs) from ``path``, exported
    there first if it is missing or unusable; None after one line if it does not export or
    does not match eager."""
    graph = graph.eval()
    for attempt in ("cached", "fresh"):
        if attempt == "fresh" or not path.exists():
            try:
                _export(graph, probe(0), output, path)
            except Exception as e:
                log(f"inference_engine onnxruntime: the {what}'s export failed ({export_error(e)}); "
                    f"the {what} runs eager")  # fmt: skip
                return None
        try:
            session = _session(path, providers, threads)
            error = _parity_error(graph, session, probe(1))
        except Exception as e:
            error, reason = float("inf"), f"{type(e).__name__}: {e}"
        else:
            reason = f"differs from eager by {error:.2e}"
        if np.isfinite(error) and error <= PARITY_ATOL:
            return session
        if attempt == "cached":
            log(f"inference_engine onnxruntime: cached export {path} is unusable ({reason}); exporting again")
            path.unlink(missing_ok=True)
        else:
            log(f"inference_engine onnxruntime: the {what}'s export {reason}; the {what} runs eager")
    return None


# ----------------------------------------------------------------------------- the two graphs as callables


class OrtDecoderStep:
    """Callable like the decoder: (x_t (B, G*C, W), t (B,), cond_terms) -> x0 logits, on ORT
    (``wide``: the session for batches of WIDE_BATCH or more, None: ``session`` for all)."""

    def __init__(self, session, wide=None):
        self.session, self.wide = session, wide
        self._terms = (None, {})  # (the window's condition terms, them as ORT inputs)

    def __call__(self, x_t, t, cond_terms):
        # The condition terms are the same list for every DDIM step of a window: stacked and
        # copied to numpy once per window, not once per step.
        if self._terms[0] is not cond_terms:
            qk, res = stack_terms(cond_terms)
            fixed = {"qk": _numpy(qk)}
            if res is not None:
                fixed["residual"] = _numpy(res)
            self._terms = (cond_terms, fixed)
        feed = {"x_t": _numpy(x_t), "t": _numpy(t, torch.int64), **self._terms[1]}
        session = self.wide if self.wide is not None and x_t.shape[0] >= WIDE_BATCH else self.session
        (out,) = session.run(None, feed)
        return torch.from_numpy(out).to(device=x_t.device, dtype=x_t.dtype)


class OrtWindowEncoder:
    """Callable like ``WindowGraph``: (holistic, partial, visible or None) -> the decoder condition, on ORT."""

    def __init__(self, session):
        self.session = session

    def __call__(self, holistic, partial, visible=None):
        B, _, W = holistic.shape
        vis = np.ones((B, W), np.float32) if visible is None else _numpy(visible)
        (out,) = self.session.run(None, {"holistic": _numpy(holistic), "partial": _numpy(partial), "visible": vis})
        return torch.from_numpy(out).to(device=holistic.device, dtype=holistic.dtype)


def usable(model: nn.Module, log: Callable[[str], None]) -> bool:
    """True if ``model`` can be exported and run here, else False after one line."""
    dtype = next(model.parameters()).dtype
    if dtype != torch.float32:
        log(f"inference_engine onnxruntime: exports fp32 only, the model is {dtype}; running eager")
        return False
    return not missing_module(log)


def onnxruntime_step(decoder, cache: Path, providers: list[str], log: Callable[[str], None], threads=STEP_THREADS):
    """An OrtDecoderStep for ``decoder`` (exported or loaded from ``cache``), or None after one line."""
    path = cache / f"decoder-step-{decoder_key(decoder)}.onnx"
    probe = lambda seed: _step_probe(decoder, seed)  # noqa: E731
    session = exported_session("decoder step", StepGraph(decoder), probe, path, "x0_logits", providers, threads, log)
    if session is None:
        return None
    wide = _session(path, providers, torch.get_num_threads()) if torch.get_num_threads() > threads else None
    return OrtDecoderStep(session, wide)


def onnxruntime_window(model, cache: Path, providers: list[str], log: Callable[[str], None], threads=None):
    """An OrtWindowEncoder for ``model`` (exported or loaded from ``cache``), or None after one line."""
    path = cache / f"window-{window_key(model)}.onnx"
    threads = torch.get_num_threads() if threads is None else threads
    probe = lambda seed: _window_probe(model, seed)  # noqa: E731
    session = exported_session("window encoder", WindowGraph(model), probe, path, "condition", providers, threads, log)
    return None if session is None else OrtWindowEncoder(session)
