"""torch.compile's artifacts kept beside the checkpoint, so the next configure does not compile again."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


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
