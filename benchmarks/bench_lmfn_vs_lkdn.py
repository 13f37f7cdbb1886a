"""LMFN vs LKDN on CPU: forward-time ratio beside multiply-add ratio, both measured in the same run.

    python benchmarks/bench_lmfn_vs_lkdn.py [--size 180 320] [--runs 9] [--threads 1 0] [--scale 4]

The point: LMFN's snake-conv sampling (grid_sample, offsets) costs time that multiply-add counts do not see.
Target: time ratio <= 1.2 x multiply-add ratio, at every thread count (0 = torch's default; all measured in this
one run, one after the other). Multiply-adds are conv/linear/matmul MACs counted by fvcore
(``harness.measure.count_flops``, column ``flops_paper``). Timings: batch 1, inference mode, one warm-up
each, then the two models alternate run by run so that load changes on a shared machine hit both alike;
the ratio uses medians; the ratio of minima (the steadier figure on a shared machine) is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from harness.measure import count_flops  # noqa: E402
from lmfn.variants import build_variant  # noqa: E402

TARGET = 1.2


def _time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    t = time.perf_counter()
    model(x)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(180, 320), metavar=("H", "W"), help="LR input size")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts (0: torch default)")
    ap.add_argument("--variant", default="lmfn", help="LMFN variant to compare with LKDN (default lmfn)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    h, w = args.size
    models = {
        "lkdn": build_variant("lkdn", args.scale).eval(),
        args.variant: build_variant(args.variant, args.scale).eval(),
    }
    macs = {name: count_flops(m, (h, w), with_thop=False)["flops_paper"] for name, m in models.items()}
    x = torch.rand(1, 3, h, w)
    default_threads = torch.get_num_threads()
    missed = [t for t in args.threads if not _compare(models, macs, x, args, t or default_threads)]
    return 1 if missed else 0


def _compare(models: dict[str, torch.nn.Module], macs: dict[str, float], x: torch.Tensor,
             args: argparse.Namespace, threads: int) -> bool:  # fmt: skip
    torch.set_num_threads(threads)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for m in models.values():
            m(x)  # warm-up: allocator, oneDNN primitive caches, the snake conv's cached base grids
        for _ in range(args.runs):
            for name, m in models.items():
                times[name].append(_time_once(m, x))
    print(f"input 1x3x{x.shape[2]}x{x.shape[3]} (x{args.scale}), CPU, torch {torch.__version__}, {threads} threads")
    for name in models:
        params = sum(p.numel() for p in models[name].parameters())
        t = times[name]
        print(
            f"  {name:<12} params {params:>8,}  conv/linear MACs {macs[name] / 1e9:7.2f} G  "
            f"time median {statistics.median(t) * 1e3:8.1f} ms  min {min(t) * 1e3:8.1f} ms  ({len(t)} runs)"
        )
    a, b = args.variant, "lkdn"
    mac_ratio = macs[a] / macs[b]
    time_ratio = statistics.median(times[a]) / statistics.median(times[b])
    min_ratio = min(times[a]) / min(times[b])
    ok = time_ratio <= TARGET * mac_ratio
    print(f"  MAC ratio {a}/{b}: {mac_ratio:.3f}")
    print(f"  time ratio {a}/{b}: {time_ratio:.3f} (median), {min_ratio:.3f} (min)")
    print(
        f"  [{threads} threads] time ratio / MAC ratio = {time_ratio / mac_ratio:.3f} (median), "
        f"{min_ratio / mac_ratio:.3f} (min)  (target <= {TARGET}): {'OK' if ok else 'MISS'}"
    )
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
