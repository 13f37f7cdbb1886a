"""Defaults that more than one module needs, in one place."""

from __future__ import annotations

SCALES = (2, 3, 4)
DEFAULT_SCALE = 4
PROTOCOLS = ("basicsr", "matlab")  # see DESIGN.md, "Protocol"
DEFAULT_PROTOCOL = "basicsr"
DEFAULT_STORE = "lmfn-results.db"

# environment variables
SHARED_ENV = "LMFN_BENCH_SHARED"  # the read-only reference folder (tests, benchmarks)
DATA_ENV = "LMFN_BENCH_DATA"  # --data-root
CACHE_ENV = "LMFN_BENCH_CACHE"  # LR cache

# benchmark sets: the paper's five, then the embedded set used when no data root is given
BENCHMARKS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
DEFAULT_SET = "Default"
ABLATION_SET = "Manga109"  # the set of the paper's Tables 1-2 and Fig. 1

# latency: timed runs and warm-up runs (CUDA events on a GPU, perf_counter on CPU)
LATENCY_RUNS = {"cuda": 100, "cpu": 10}
LATENCY_WARMUP = {"cuda": 20, "cpu": 2}
