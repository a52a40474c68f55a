"""Inference engines: what runs a HopaDIFF window (``HopaDIFF.set_engine``, the node's
``inference_engine``).

  eager        PyTorch as written.
  compile      the denoising step through torch.compile (inductor) with symbolic shapes; what it
               compiled is saved beside the checkpoint (``torch.compiler.save_cache_artifacts``,
               :mod:`.compiled`) after the warm-up and handed back to torch by the next
               configure. A compile that fails in the warm-up (no C++ compiler on the robot, an
               operator inductor cannot lower) leaves eager running and says so in one line.
  onnxruntime  the window's two graphs, exported once with torch.onnx and run by ONNX Runtime
               (:mod:`.ort`): the encoders + HP-xLSTM + condition once per window, the decoder
               step once per DDIM step; cached beside the checkpoint by content.

The execution provider follows the device: CPUExecutionProvider on the CPU; on CUDA,
TensorrtExecutionProvider or CUDAExecutionProvider when this onnxruntime build has them (the
PyPI ``onnxruntime`` wheel has neither: ``onnxruntime-gpu`` does), else the CPU with one line
saying so. The graphs are exported in fp32; a model in reduced precision runs eager (one line).
Whatever falls back to eager says so in one line and in ``report``; nothing falls back silently.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from .compiled import load_compile_artifacts, save_compile_artifacts

ENGINES = ("eager", "compile", "onnxruntime")


def weights_version(module: torch.nn.Module) -> tuple:
    """Changes whenever ``module``'s weights do (an optimizer step, a load, a device or dtype move)."""
    return tuple((p.data_ptr(), p._version, p.dtype) for p in module.parameters())


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


def _compiled(fn):
    """``fn`` through torch.compile with symbolic shapes and constant floats. The step's only
    Python floats are module constants (dropout p, a norm's eps); left symbolic, as dynamic=True
    makes them, inductor cannot turn them into tensors and dynamo traces the whole step a second
    time (TensorifyScalarRestartAnalysis): a cached configure took 10-12 s, half of it that."""
    compiled = torch.compile(fn, dynamic=True)

    def step(*args):
        with torch._dynamo.config.patch(specialize_float=True):
            return compiled(*args)

    return step


class EngineRunner:
    """The engine one model runs on, and what it built for that model: the compiled step, the
    ONNX Runtime sessions. The model holds it (not a submodule: nothing of it is saved); what it
    built is rebuilt when the model's weights change."""

    def __init__(self, engine: str = "eager", cache_dir=None, log: Callable[[str], None] = print):
        if engine not in ENGINES:
            raise ValueError(f"inference engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine, self.cache_dir, self.log = engine, cache_dir, log
        self.report = engine  # what runs, as configure logs it
        self._built: dict[str, tuple] = {}  # what -> (weights version key, the thing)
        self._ort = None  # (cache folder, providers) once set up; False: onnxruntime cannot run here
        self._ort_ran: dict[str, bool] = {}  # "step" / "window" -> runs on ORT
        if engine == "compile" and load_compile_artifacts(cache_dir, log):
            self.report = "compile (artifacts from the cache)"

    def __deepcopy__(self, memo):  # a copied model: the same settings, built again for its own weights
        fresh = copy.copy(self)
        fresh._built, fresh._ort, fresh._ort_ran = {}, None, {}
        return fresh

    # ------------------------------------------------------------------ what predict asks for
    def condition(self, model, holistic, partial, visible):
        """The window's decoder condition (``model.encode``'s), as the engine runs it."""
        if self.engine == "onnxruntime":
            window = self._get("window", model, lambda: self._ort_window(model))
            if window is not None:
                return window(holistic, partial, visible)
        return model.encode(holistic, partial, visible)[1]

    def full_step(self, model):
        """The step over every branch's decoder: (x_t, t, cond_terms) -> x0 logits."""
        if self.engine == "eager":
            return model._decode
        return self._get("full", model, lambda: self._accelerate(model, None, model._decode))

    def subset_step(self, model, run: list[int]):
        """(``model.decoder.subset(run)``, its step as the engine runs it)."""
        return self._get(("subset", tuple(run)), model, lambda: self._subset(model, run))

    def warm_up(self, model, window: int, batch_sizes=(1, 2)) -> None:
        """One short prediction per batch size: a compiled step compiles (onnxruntime exports or
        loads its graphs) here rather than on the first live window."""
        p = next(model.parameters())
        for B in batch_sizes:
            x = torch.zeros(B, model.cfg.feature_dim, window, device=p.device, dtype=p.dtype)
            try:
                model.predict(x, x, steps=1)
            except Exception as e:  # no C++ compiler on the robot, an operator inductor cannot lower, ...
                if self.engine != "compile":
                    raise
                return self._compile_failed(e)
        if self.engine == "compile":  # the next configure of this checkpoint reuses what was compiled here
            save_compile_artifacts(self.cache_dir, self.log)

    # ------------------------------------------------------------------ building
    def _get(self, what, model, build):
        key = weights_version(model)
        built = self._built.get(what)
        if built is None or built[0] != key:
            built = self._built[what] = (key, build())
        return built[1]

    def _subset(self, model, run):
        subset = model.decoder.subset(run)
        return subset, self._accelerate(model, subset, subset)

    def _accelerate(self, model, decoder, fn):
        """``fn`` (the step over ``decoder``; None: the full decoder) as the engine runs it."""
        if self.engine == "compile":
            return _compiled(fn)
        if self.engine != "onnxruntime" or not self._ort_ready(model):
            return fn
        if decoder is None:
            if model.decoder_groups != model.num_branches:
                self.log("inference_engine onnxruntime: the shared decoder (ablation.shared_decoder) folds the "
                         "branches into the batch and is not exported; its step runs eager")  # fmt: skip
                self._ort_report(step=False)
                return fn
            decoder = model.decoder
        from .ort import onnxruntime_step

        step = onnxruntime_step(decoder.eval(), *self._ort, self.log)
        self._ort_report(step=step is not None)
        return step or fn

    def _ort_ready(self, model) -> bool:
        if self._ort is None:
            from .ort import providers_for, usable

            ok = usable(model, self.log)
            self._ort = (writable_cache(self.cache_dir, self.log), providers_for(next(model.parameters()).device,
                         self.log)) if ok else False  # fmt: skip
            if not ok:
                self.report = "eager (onnxruntime unavailable, see the log)"
        return bool(self._ort)

    def _ort_window(self, model):
        if not self._ort_ready(model):
            return None
        from .ort import onnxruntime_window

        window = onnxruntime_window(model, *self._ort, self.log)
        self._ort_report(window=window is not None)
        return window

    def _ort_report(self, **ran) -> None:
        """Record which graph runs on ORT (``step`` / ``window``: True or False) in ``report``."""
        self._ort_ran.update(ran)
        on = [name for name, ok in self._ort_ran.items() if ok]
        off = [name for name, ok in self._ort_ran.items() if not ok]
        names = {"step": "the decoder step", "window": "the window encoder"}
        if not on:
            self.report = "eager (onnxruntime unavailable, see the log)"
        else:
            self.report = f"onnxruntime ({', '.join(self._ort[1])})" + "".join(
                f"; {names[n]} eager, see the log" for n in off
            )

    def _compile_failed(self, error: Exception) -> None:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        self.log(f"inference_engine compile: compiling failed ({type(error).__name__}: {first}); running eager")
        self.engine, self._built = "eager", {}
        self.report = "eager (compile failed, see the log)"
