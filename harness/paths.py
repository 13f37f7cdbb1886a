"""Where reference data, caches and outputs live."""

from __future__ import annotations

import os
from pathlib import Path

from harness.settings import CACHE_ENV, DATA_ENV, SHARED_ENV

__all__ = ["CACHE_ENV", "DATA_ENV", "SHARED_ENV", "cache_dir", "shared_dir"]


def shared_dir() -> Path | None:
    """The read-only reference folder (``$LMFN_BENCH_SHARED`` or ``../shared`` beside the checkout)."""
    env = os.environ.get(SHARED_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared")
    candidates.append(Path.cwd().parent / "shared")
    for c in candidates:
        if (c / "DESIGN.md").is_file() or (c / "data").is_dir() or (c / "weights").is_dir():
            return c
    return None


def cache_dir() -> Path:
    """A writable cache folder (``$LMFN_BENCH_CACHE``, else ``$XDG_CACHE_HOME/lmfn-bench``)."""
    env = os.environ.get(CACHE_ENV)
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmfn-bench"
    base.mkdir(parents=True, exist_ok=True)
    return base
