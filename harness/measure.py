"""Model cost: parameters, FLOPs (fvcore in three columns, thop as a cross-check), latency and peak memory.

Everything returns plain dicts (JSON-able values) so the CLI and the results store can take them as they are.

FLOPs are multiply-accumulates (MACs, one fused multiply-add = 1, as SR papers count "Multi-Adds") for one
LR image of ``ceil(720/s) x ceil(1280/s)`` (a 1280x720 HR output; x3: 240x427), batch 1, or 256x256 in NTIRE
mode. The model is traced once by fvcore's FlopCountAnalysis and three columns are read off that one trace:

- ``flops_paper``: convolutions and linear / matmul ops only (what papers count),
- ``flops_fvcore``: exactly what ``FlopCountAnalysis(model, x).total()`` returns (fvcore's default handles),
- ``flops_full``: fvcore's defaults plus the handles in :mod:`harness.flop_handles` (element-wise ops,
  activations, reductions, pooling, resizes; each price documented there).

Beside each column come the ops it did not count (``unsupported_fvcore`` = fvcore's ``unsupported_ops()``).
``flops_thop`` is ``thop.profile`` (module hooks: convs, linears, nn norms/pools/upsample modules only).

Which column reproduces which paper (tools read from the official repos; x4, 180x320, measured here):
LKDN used thop (calculate_params_flops.py) with an nn.LayerNorm that thop prices at 4/element: conv 18.22 +
LN 0.10 = 18.33 G (published 18.3); our ``flops_fvcore`` gives 18.35 G, ``flops_paper`` 18.22 G. BSRN used an
older thop that added one op per conv output for the bias (basicsr/summary.py): ``flops_paper`` 19.18 + bias
0.24 = 19.41 G (published 19.4). VapSR 19.5 G and IMDN 41 G (its FLOPs/profile.py) match ``flops_paper``
(19.52, 40.89 G). SAFMN used fvcore's defaults (safmn_arch.py __main__) on a hand-written LayerNorm fvcore
cannot see: conv + nearest resize = 13.55 G; our ``flops_fvcore`` 13.72 G (our LN traces as layer_norm);
both round to the published 14 G. ``flops_thop`` depends on module types (an LN written as a function is
invisible to it), so it is a cross-check only.

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
import platform
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from torch import nn

from harness.errors import UsageError
from harness.flop_handles import FULL_HANDLES, FVCORE_IGNORED, FVCORE_OPS, PAPER_OPS
from harness.provenance import cpu_name

HD_SIZE = (720, 1280)  # HR height x width the FLOPs protocol targets
NTIRE_LR_SIZE = (256, 256)  # NTIRE efficient-SR challenge: FLOPs for a 256x256 LR input
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ----------------------------------------------------------------------------------------------------------
# sizes, params, environment


def lr_size_for(scale: int, ntire: bool = False) -> tuple[int, int]:
    """LR (height, width) of the FLOPs protocol: a 1280x720 HR output, or NTIRE's 256x256 LR input."""
    if ntire:
        return NTIRE_LR_SIZE
    # ceil, so that x3 gives 240 x 427 as the SR papers use (426.67 rounded up)
    return math.ceil(HD_SIZE[0] / scale), math.ceil(HD_SIZE[1] / scale)


def count_params(model: nn.Module) -> int:
    """Number of parameters, ``sum(p.numel())`` (shared parameters counted once, as ``parameters()`` does)."""
    return sum(p.numel() for p in model.parameters())


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def environment() -> dict[str, Any]:
    """Library versions every measured row carries."""
    return {
        "torch_version": torch.__version__,
        "fvcore_version": _pkg_version("fvcore"),
        "thop_version": _pkg_version("thop"),
        "python_version": platform.python_version(),
    }


def format_ops(ops: Mapping[str, int]) -> str:
    """``{'aten::gelu': 73, ...}`` -> ``'gelu x73, ...'`` (most frequent first) for tables and logs."""
    items = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k.split('::', 1)[-1]} x{n}" for k, n in items)


def _probe_input(model: nn.Module, size: tuple[int, int], in_channels: int = 3) -> torch.Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    # fixed seed: a data-dependent model (offsets, gates) then traces the same way every time
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, in_channels, *size, generator=g).to(device)


# ----------------------------------------------------------------------------------------------------------
# FLOPs


def _tagged(kind: str, handle: Callable, calls: Counter) -> Callable:
    """Wrap a handle so its count is filed under the full aten name and its calls are tallied."""

    def wrapped(inputs: list[Any], outputs: list[Any]) -> Counter:
        calls[kind] += 1
        r = handle(inputs, outputs)
        total = sum(r.values()) if isinstance(r, Mapping) else r
        return Counter({kind: int(round(total))})

    return wrapped


def count_flops(
    model: nn.Module, size: tuple[int, int], *, in_channels: int = 3, with_thop: bool = True
) -> dict[str, Any]:
    """FLOP columns for one ``1 x in_channels x H x W`` input (``size`` = (H, W)); values are MACs.

    One fvcore trace yields all three fvcore columns: each handle tags its count with the op name, and a
    column is the sum over its op set (paper: conv/linear/matmul; fvcore: fvcore's default table; full: all).
    """
    from fvcore.nn import FlopCountAnalysis

    x = _probe_input(model, size, in_channels)
    calls: Counter[str] = Counter()
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer / jit deprecation chatter
            fca = FlopCountAnalysis(model, (x,))
            fca.set_op_handle(**{k: _tagged(k, h, calls) for k, h in FULL_HANDLES.items()})
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            by_op = Counter({k: int(v) for k, v in fca.by_operator().items()})
            unsupported_full = Counter(fca.unsupported_ops())
    finally:
        model.train(was_training)

    # what plain fvcore would list: no handle there, and not on fvcore's list of free ops
    unsupported_fvcore = unsupported_full + Counter(
        {k: n for k, n in calls.items() if k not in FVCORE_OPS and k not in FVCORE_IGNORED}
    )
    uncounted_paper = unsupported_full + Counter(
        {k: n for k, n in calls.items() if k not in PAPER_OPS and by_op.get(k, 0) > 0}
    )
    out: dict[str, Any] = {
        "lr_h": size[0],
        "lr_w": size[1],
        "flops_paper": sum(v for k, v in by_op.items() if k in PAPER_OPS),
        "flops_fvcore": sum(v for k, v in by_op.items() if k in FVCORE_OPS),
        "flops_full": sum(by_op.values()),
        "uncounted_paper": dict(uncounted_paper),
        "unsupported_fvcore": dict(unsupported_fvcore),
        "unsupported_full": dict(unsupported_full),
        "flops_by_op": {k: v for k, v in sorted(by_op.items(), key=lambda kv: -kv[1]) if v},
    }
    if with_thop:
        try:
            out["flops_thop"] = thop_macs(model, x)
        except Exception as e:  # a cross-check must not sink the row; say why it is missing
            out["flops_thop"] = None
            out["flops_thop_error"] = f"{type(e).__name__}: {e}"
    return out


def thop_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs by ``thop.profile`` (module hooks). Runs on a copy: thop leaves buffers on hook-less modules."""
    m = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thop compares versions with distutils' LooseVersion
        import thop
        from thop.vision.basic_hooks import count_convNd

        # thop matches hooks by exact type: conv subclasses (lmfn's Conv1x1) are counted as the convs they are
        subs = {type(mod): count_convNd for mod in m.modules() if isinstance(mod, nn.Conv2d) and type(mod) is not nn.Conv2d}
        macs, _ = thop.profile(m, inputs=(x,), custom_ops=subs, verbose=False)
    return int(macs)


# ----------------------------------------------------------------------------------------------------------
# latency and memory


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


# ----------------------------------------------------------------------------------------------------------
# one call for the CLI


def profile_model(
    model: nn.Module,
    scale: int,
    *,
    lr_size: tuple[int, int] | None = None,
    ntire: bool = False,
    flops: bool = True,
    thop: bool = True,
    latency: bool = True,
    latency_size: tuple[int, int] | None = None,
    device: str = "cpu",
    dtype: str = "fp32",
    runs: int = 50,
    warmup: int = 10,
    channels_last: bool = False,
    compile: bool = False,
) -> dict[str, Any]:
    """Params, FLOP columns and (optionally) latency of ``model`` at ``scale`` as one flat dict.

    ``lr_size`` overrides the protocol size (then ``input`` is 'custom'); ``latency_size`` lets latency run at
    a smaller input than the FLOP count (CPU), default the same size.
    """
    size = lr_size or lr_size_for(scale, ntire)
    # re-parameterisable models (SPAN) are measured as deployed: papers count the fused network
    deploy = getattr(model, "deploy", None)
    if callable(deploy):
        model = deploy()
    row: dict[str, Any] = {
        "scale": scale,
        "input": "custom" if lr_size else ("ntire256" if ntire else "hd720"),
        "lr_h": size[0],
        "lr_w": size[1],
        "params": count_params(model),
        **environment(),
    }
    if flops:
        row.update(count_flops(model, size, with_thop=thop))
    if latency:
        row.update(
            measure_latency(
                model,
                latency_size or size,
                device=device,
                dtype=dtype,
                runs=runs,
                warmup=warmup,
                channels_last=channels_last,
                compile=compile,
            )
        )
    return row
