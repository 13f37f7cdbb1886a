"""Latency repeatability: max/min of repeated latency medians for one model (default LKDN x4, 64x64 LR, CPU).

    python benchmarks/bench_measure.py [--model lkdn] [--scale 4] [--size 64] [--reps 5] [--runs 60]
                                       [--threads 1 0]

Each repetition is a full ``harness.latency.measure_latency`` call (fresh warm-up, ``--runs`` timed runs);
the figure of merit is max(median) / min(median) over the repetitions, for each thread count in turn (0 =
torch's default) in this one run. Target: <= 1.05 on an idle CPU (a busy machine - other jobs on the same
cores - shows up here first, so the load average is printed too). Exit status 1 when a thread count misses.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from harness import latency, zoo

TARGET = 1.05


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lkdn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="LR height = width")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts (0: torch default)")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    model = zoo.build(args.model, args.scale)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{args.model} x{args.scale}, LR {args.size}x{args.size}, {args.device} {args.dtype}, {args.reps} reps")
    if load is not None:
        print(f"load average (1/5/15 min) at start: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    default_threads = torch.get_num_threads()
    missed = [t for t in args.threads if _repeatability(model, args, t or default_threads) > TARGET]
    return 1 if missed else 0


def _repeatability(model: torch.nn.Module, args: argparse.Namespace, threads: int) -> float:
    torch.set_num_threads(threads)
    medians = []
    for i in range(args.reps):
        r = latency.measure_latency(
            model, (args.size, args.size), device=args.device, dtype=args.dtype, runs=args.runs,
            warmup=args.warmup,
        )  # fmt: skip
        medians.append(r["latency_ms_median"])
        med, p90 = r["latency_ms_median"], r["latency_ms_p90"]
        print(
            f"  [{r['threads']} threads] rep {i + 1}: median {med:.2f} ms  p90 {p90:.2f} ms  "
            f"min {r['latency_ms_min']:.2f} ms  (p90/median {p90 / med:.3f})"
        )
    ratio = max(medians) / min(medians)
    verdict = "ok" if ratio <= TARGET else "MISS"
    print(
        f"device: {r['device_name']} ({r['device']}), threads {r['threads']}, torch {torch.__version__}: "
        f"latency repeatability max/min of {args.reps} medians: {ratio:.3f} (target <= {TARGET}: {verdict})"
    )
    return ratio


if __name__ == "__main__":
    sys.exit(main())
