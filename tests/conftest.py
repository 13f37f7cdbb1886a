"""Shared fixtures: the read-only reference folder (../shared or $LMFN_BENCH_SHARED) and a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.paths import SHARED_ENV, shared_dir


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # LR caches and downloads go to a per-session temp dir, never into ../shared or the user's cache
    monkeypatch.setenv("LMFN_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _one_thread(request: pytest.FixtureRequest):
    """Fast tests use tiny tensors: one thread is faster, and on a loaded CI box OpenMP barriers can cost 10-30x."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def torch_globals():
    """Training sets thread count / determinism process-wide; put them back."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def _need(rel: str) -> Path:
    root = shared_dir()
    if root is None:
        pytest.skip(f"reference folder not found (set ${SHARED_ENV} or put it at ../shared)")
    p = root / rel
    if not p.exists():
        pytest.skip(f"reference data missing: {p}")
    return p


@pytest.fixture
def shared() -> Path:
    return _need(".")


@pytest.fixture
def data_root() -> Path:
    """../shared/data: benchmark/{Set5,Set14}/HR and train/{T91,BSD200}."""
    return _need("data/benchmark/Set5/HR").parents[2]


@pytest.fixture
def weights_dir() -> Path:
    return _need("weights")


@pytest.fixture
def need_shared():
    """Call with a path relative to ../shared; skips (saying what is missing) when it is absent."""
    return _need
