"""Inference engines for the denoising step, the part of a window that runs once per DDIM step.

  eager        PyTorch as written.
  compile      torch.compile (inductor) with symbolic shapes (``HopaDIFF.compile_decoder``); what
               it compiled is saved beside the checkpoint (``torch.compiler.save_cache_artifacts``)
               after the warm-up and handed back to torch by the next configure. A compile
               that fails in the warm-up (no C++ compiler on the robot, an operator inductor
               cannot lower) leaves eager running and says so in one line.
  onnxruntime  the decoder step exported once with torch.onnx (dynamic batch and length) and run
               by ONNX Runtime. The export is cached beside the checkpoint, in a file whose name
               is a hash of the decoder's weights and config, the export settings and the
               torch / onnx versions: a changed checkpoint never reuses a stale export, and a
               second configure only loads the file. A cached file that does not load, or whose
               output differs from eager on a probe input, is rebuilt. An export failure leaves
               eager running and says so in one line with the failing operator's message.

The execution provider follows the device: CPUExecutionProvider on the CPU; on CUDA,
TensorrtExecutionProvider or CUDAExecutionProvider when this onnxruntime build has them (the
PyPI ``onnxruntime`` wheel has neither: ``onnxruntime-gpu`` does), else the CPU with one line
saying so. The graph is exported in fp32; reduced precision stays with eager / compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

ENGINES = ("eager", "compile", "onnxruntime")
EXPORT_VERSION = 2  # bump when what is exported changes (2: the taps as slices, not a Gather)
PARITY_ATOL = 1e-4


class _StepGraph(nn.Module):
    """The decoder step as a graph of tensors only: the per-layer condition terms stacked."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, x_t, t, qk, residual=None):
        L = qk.shape[0]
        terms = [(qk[i], None if residual is None else residual[i]) for i in range(L)]
        return self.decoder(x_t, t, terms)


def _stack_terms(cond_terms) -> tuple[torch.Tensor, torch.Tensor | None]:
    qk = torch.stack([q for q, _ in cond_terms])
    res = None if cond_terms[0][1] is None else torch.stack([r for _, r in cond_terms])
    return qk, res


def decoder_key(decoder: nn.Module) -> str:
    """Hash of what the export depends on: weights, config, versions."""
    import onnx

    h = hashlib.sha256()
    for name, tensor in sorted(decoder.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    h.update(json.dumps(vars(decoder.cfg), sort_keys=True, default=str).encode())
    h.update(f"{decoder.groups}|{torch.__version__}|{onnx.__version__}|{EXPORT_VERSION}".encode())
    return h.hexdigest()[:24]


def providers_for(device: torch.device, log: Callable[[str], None]) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.type == "cuda":
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        if wanted:
            return [*wanted, "CPUExecutionProvider"]
        log(
            "inference_engine onnxruntime: this onnxruntime build has no CUDA or TensorRT provider "
            f"(available: {', '.join(available)}); the decoder step runs on CPUExecutionProvider "
            "(install onnxruntime-gpu for the GPU)"
        )
    return ["CPUExecutionProvider"]


class OrtDecoderStep:
    """Callable like the decoder: (x_t (B, G*C, W), t (B,), cond_terms) -> x0 logits, on ORT."""

    def __init__(self, session, providers: list[str], path: Path, device: torch.device, has_residual: bool):
        self.session, self.providers, self.path, self.device = session, providers, path, device
        self.has_residual = has_residual
        self._terms = (None, {})  # (the window's condition terms, them as ORT inputs)

    def __call__(self, x_t, t, cond_terms):
        # The condition terms are the same list for every DDIM step of a window: stacked and
        # copied to numpy once per window, not once per step.
        if self._terms[0] is not cond_terms:
            qk, res = _stack_terms(cond_terms)
            fixed = {"qk": qk.detach().to("cpu", torch.float32).numpy()}
            if self.has_residual:
                fixed["residual"] = res.detach().to("cpu", torch.float32).numpy()
            self._terms = (cond_terms, fixed)
        feed = {
            "x_t": x_t.detach().to("cpu", torch.float32).numpy(),
            "t": t.detach().to("cpu", torch.int64).numpy(),
            **self._terms[1],
        }
        (out,) = self.session.run(None, feed)
        return torch.from_numpy(out).to(device=x_t.device, dtype=x_t.dtype)


def compile_artifacts_path(cache_dir) -> Path | None:
    """Where torch.compile's artifacts for this checkpoint are kept (per torch version)."""
    return None if cache_dir is None else Path(cache_dir) / f"compile-artifacts-torch{torch.__version__}.bin"


def load_compile_artifacts(cache_dir, log: Callable[[str], None]) -> bool:
    """Hand torch.compile the artifacts a previous configure saved (``torch.compiler.load_cache_artifacts``),
    so this one does not compile again; an unreadable file is ignored with one line."""
    path = compile_artifacts_path(cache_dir)
    if path is None or not path.exists():
        return False
    try:
        torch.compiler.load_cache_artifacts(path.read_bytes())
        return True
    except Exception as e:  # a file from another build, truncated, ...: compile as if it were not there
        log(f"inference_engine compile: ignoring {path} ({type(e).__name__}: {e})")
        return False


def save_compile_artifacts(cache_dir, log: Callable[[str], None]) -> None:
    """Write what torch.compile produced in this process (``torch.compiler.save_cache_artifacts``) atomically."""
    path = compile_artifacts_path(cache_dir)
    if path is None:
        return
    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(saved[0])
        os.replace(tmp, path)
    except OSError as e:
        log(f"inference_engine compile: cannot keep the compile artifacts in {path} ({e})")


def compile_failed(model, error: Exception, log: Callable[[str], None]) -> None:
    """One line for a compile that failed; ``model`` (already set back to eager) says so in its report."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    log(f"inference_engine compile: compiling failed ({type(error).__name__}: {first}); running eager")
    object.__setattr__(model, "engine_report", "eager (compile failed, see the log)")


def writable_cache(cache_dir: str | Path | None, log: Callable[[str], None]) -> Path:
    """``cache_dir`` if it can be written, else a folder in the temp dir (said in one line)."""
    fallback = Path(tempfile.gettempdir()) / "hopadiff-engines"
    if cache_dir is None:
        return fallback
    cache = Path(cache_dir)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if os.access(cache, os.W_OK):
            return cache
    except OSError:
        pass
    log(f"inference_engine onnxruntime: cannot write {cache}; caching the export in {fallback}")
    return fallback


def _probe(decoder, generator_seed: int = 0):
    """A small input for the parity probe: (x_t, t, cond_terms)."""
    g = torch.Generator().manual_seed(generator_seed)
    p = next(decoder.parameters())
    B, W = 2, 24
    C = decoder.conv_in.in_channels * decoder.groups
    Fc = decoder.cond_in.in_channels * decoder.groups
    x = torch.randn(B, C, W, generator=g).to(p.device)
    t = torch.tensor([3, 40], device=p.device)
    with torch.no_grad():
        terms = decoder.encode_condition(torch.randn(B, Fc, W, generator=g).to(p.device, p.dtype))
    return x.to(p.dtype), t, terms


def _export(decoder, path: Path) -> None:
    import warnings

    x, t, terms = _probe(decoder)
    qk, res = _stack_terms(terms)
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = torch.export.Dim("frames", min=2, max=1 << 20)
    inputs = {"x_t": (x, {0: batch, 2: frames}), "t": (t, {0: batch}), "qk": (qk, {1: batch, 3: frames})}
    if res is not None:
        inputs["residual"] = (res, {1: batch, 3: frames})
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
                _StepGraph(decoder).eval(),
                tuple(tensor for tensor, _ in inputs.values()),
                tmp,
                dynamo=True,
                dynamic_shapes={name: dims for name, (_, dims) in inputs.items()},
                input_names=list(inputs),
                output_names=["x0_logits"],
                external_data=False,
                verbose=False,
            )
        os.replace(tmp, path)  # never a half-written export under the final name
    finally:
        quiet.setLevel(level)
        if os.path.exists(tmp):
            os.unlink(tmp)


# ONNX Runtime's own thread pool, beside torch's: the step's operators are small (a (B, 24, W)
# tensor), so splitting them across threads pays less than it costs, and ORT's idle threads spin
# by default, taking the cores from torch's pool that runs the rest of the window between steps.
# Measured (bench_model, W=256, one person, 2-core CPU): a window took 220 ms with 2 spinning
# ORT threads, 114 ms with 2 that do not spin, 100 ms with one (eager 85); the step alone 5.9 /
# 3.4 ms with 2 / 1 threads, and 28 / 25 ms for 8 persons.
ORT_THREADS = 1


def _session(path: Path, providers: list[str], threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=providers)


def _parity_error(decoder, step: OrtDecoderStep) -> float:
    x, t, terms = _probe(decoder, generator_seed=1)
    with torch.no_grad():
        ref = decoder(x, t, terms).float()
    return float((step(x, t, terms).float() - ref).abs().max())


def onnxruntime_step(
    decoder, cache_dir: str | Path | None, log: Callable[[str], None] = print, threads: int | None = None
):
    """An OrtDecoderStep for ``decoder`` (exported or loaded from ``cache_dir``), or None after
    one line saying why eager stays (onnxruntime missing, export failure)."""
    for module in ("onnxruntime", "onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            log(f"inference_engine onnxruntime: {module} is not installed (pip install {module}); running eager")
            return None
    p = next(decoder.parameters())
    device = p.device
    if p.dtype != torch.float32:
        log(f"inference_engine onnxruntime: exports fp32 only, the model is {p.dtype}; running eager")
        return None
    cache = writable_cache(cache_dir, log)
    path = cache / f"decoder-step-{decoder_key(decoder)}.onnx"
    providers = providers_for(device, log)
    threads = ORT_THREADS if threads is None else threads
    has_residual = decoder.residual is not None
    decoder = decoder.eval()
    for attempt in ("cached", "fresh"):
        if attempt == "fresh" or not path.exists():
            try:
                _export(decoder, path)
            except Exception as e:  # the exporter's own message names the operator it could not translate
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                log(f"inference_engine onnxruntime: export failed ({type(e).__name__}: {first}); running eager")
                return None
        try:
            step = OrtDecoderStep(_session(path, providers, threads), providers, path, device, has_residual)
            error = _parity_error(decoder, step)
        except Exception as e:
            error, reason = float("inf"), f"{type(e).__name__}: {e}"
        else:
            reason = f"differs from eager by {error:.2e}"
        if np.isfinite(error) and error <= PARITY_ATOL:
            return step
        if attempt == "cached":
            log(f"inference_engine onnxruntime: cached export {path} is unusable ({reason}); exporting again")
            path.unlink(missing_ok=True)
        else:
            log(f"inference_engine onnxruntime: the export {reason}; running eager")
    return None
