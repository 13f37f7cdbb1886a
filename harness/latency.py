"""Latency and peak memory of a batch-1 forward (the figure efficient-SR papers and NTIRE rank on).

Latency: batch 1, ``torch.inference_mode``, warm-up, N timed runs, median and p90. On CPU each run is timed
with ``time.perf_counter`` and ``torch.get_num_threads()`` is recorded; on CUDA with CUDA events, and peak
memory is ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (weights + activations).
Precision: fp32 everywhere, bf16 on CPU or CUDA, fp16 on CUDA only (asking for fp16 on CPU is an error:
CPU half-precision convs run slow fallback kernels, so the number would describe no real deployment).
Reduced precision casts the weights and the input (``.to(dtype)``), not autocast, as a deployed model would.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from harness.errors import UsageError
from harness.provenance import cpu_name

__all__ = [
    "PRECISIONS", "CudaEventTimer", "PerfCounterTimer", "device_name", "measure_latency", "percentile",
    "resolve_device", "resolve_dtype", "summarize_timings", "timed_runs",
]  # fmt: skip

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"'{device}' is not a torch device; use cpu or cuda[:i]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device '{device}' requested but CUDA is not available (torch.cuda.is_available() is False)"
        )
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"latency is measured on 'cpu' or 'cuda', not '{dev.type}'")
    return dev


def resolve_dtype(device: torch.device, dtype: str) -> torch.dtype:
    """fp32 / bf16 anywhere, fp16 on CUDA only (see the module docstring for why)."""
    if dtype not in PRECISIONS:
        raise UsageError(f"dtype must be one of {sorted(PRECISIONS)}, got '{dtype}'")
    if dtype == "fp16" and device.type != "cuda":
        raise UsageError("fp16 latency needs CUDA; on CPU measure fp32 or bf16")
    return PRECISIONS[dtype]


def percentile(values: list[float], q: float) -> float:
    """Percentile ``q`` in [0, 100] by linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize_timings(times_ms: list[float]) -> dict[str, float]:
    """Median, p90, min, max, mean and (population) std of per-run times in ms."""
    n = len(times_ms)
    mean = sum(times_ms) / n if n else float("nan")
    return {
        "latency_ms_median": percentile(times_ms, 50),
        "latency_ms_p90": percentile(times_ms, 90),
        "latency_ms_min": min(times_ms),
        "latency_ms_max": max(times_ms),
        "latency_ms_mean": mean,
        "latency_ms_std": math.sqrt(sum((t - mean) ** 2 for t in times_ms) / n),
        "latency_runs": n,
    }


class PerfCounterTimer:
    """Wall time of one call with ``time.perf_counter`` (CPU: the op runs synchronously)."""

    name = "perf_counter"

    def __call__(self, fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def sync(self) -> None:
        pass


class CudaEventTimer:
    """GPU time of one call between two CUDA events recorded on the current stream."""

    name = "cuda_event"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self, fn: Callable[[], Any]) -> float:
        self.start.record()
        fn()
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end)

    def sync(self) -> None:
        torch.cuda.synchronize(self.device)


def timed_runs(
    fn: Callable[[], Any], timer: Callable[[Callable[[], Any]], float], runs: int, warmup: int
) -> list[float]:
    """``warmup`` untimed calls, then ``runs`` timed ones; returns the per-run times (ms)."""
    if runs < 1 or warmup < 0:
        raise UsageError(f"need runs >= 1 and warmup >= 0 (got runs={runs}, warmup={warmup})")
    for _ in range(warmup):
        fn()
    sync = getattr(timer, "sync", None)
    if sync is not None:
        sync()  # warm-up work must not leak into the first timed run
    return [timer(fn) for _ in range(runs)]


def measure_latency(
    model: nn.Module,
    size: tuple[int, int],
    *,
    device: str | torch.device = "cpu",
    dtype: str = "fp32",
    runs: int = 50,
    warmup: int = 10,
    channels_last: bool = False,
    compile: bool = False,
    in_channels: int = 3,
) -> dict[str, Any]:
    """Latency of a batch-1 forward at LR ``size`` = (H, W) and CUDA peak memory; ``model`` stays as it is."""
    dev = resolve_device(device)
    tdtype = resolve_dtype(dev, dtype)
    # copy: casting / channels_last must not change the caller's model
    m = copy.deepcopy(model).eval().to(device=dev, dtype=tdtype)
    x = torch.rand(1, in_channels, *size, generator=torch.Generator().manual_seed(0)).to(dev, tdtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    run_model: Callable = torch.compile(m) if compile else m

    is_cuda = dev.type == "cuda"
    timer = CudaEventTimer(dev) if is_cuda else PerfCounterTimer()
    if is_cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    # events record on the current stream: make the model's device the current one
    with torch.cuda.device(dev) if is_cuda else nullcontext(), torch.inference_mode():
        times = timed_runs(lambda: run_model(x), timer, runs, warmup)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if is_cuda else None

    return {
        **summarize_timings(times),
        "latency_warmup": warmup,
        "latency_lr_h": size[0],
        "latency_lr_w": size[1],
        "timer": timer.name,
        "device": dev.type,
        "device_name": device_name(dev),
        "dtype": dtype,
        "channels_last": channels_last,
        "compile": compile,
        "threads": torch.get_num_threads(),
        # CPU: no allocator statistics to read, so no figure rather than a process-wide RSS guess
        "peak_mem_mb": peak,
    }
