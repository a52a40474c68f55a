"""Device and precision as configuration strings, mapped once."""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """auto -> cuda if available else cpu; also cpu, cuda, cuda:N."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device {name!r} is not valid; use auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ValueError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} unknown; allowed: {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return PRECISIONS[precision]


def prepare_for_inference(
    model: torch.nn.Module, device: str = "auto", precision: str = "fp32", engine: str = "eager",
    cache_dir=None, log=print,
) -> torch.nn.Module:  # fmt: skip
    """Move the model to the configured device/dtype, eval mode (weights cast once, no autocast);
    its denoising step runs on ``engine`` (hopadiff.engines: eager, compile, onnxruntime; exports
    cached in ``cache_dir``)."""
    dev = resolve_device(device)
    model = model.to(device=dev, dtype=resolve_dtype(precision, dev)).eval()
    return model.set_engine(engine, cache_dir, log)


def autocast(device: torch.device, precision: str):
    """Mixed-precision context for training on CUDA; a no-op for fp32 or on CPU."""
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=PRECISIONS[precision])
