"""Eval overhead: wall time of ``evaluate_model`` / sum of pure forward times, LKDN x4 on Set14 (CPU).

    python benchmarks/bench_eval_overhead.py [--model lkdn] [--scale 4] [--dataset Set14] [--data-root DIR]

Pure forward times are measured in the same run on the same LR tensors (made beforehand, no metrics, no I/O);
the eval time includes reading images, the LR cache, the metrics and the conversions. The LR cache is warmed
first, as it is on every run after the first. Target: <= 1.15. Without a data root the Default set is used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from harness import zoo
from harness.data import benchmark_pairs
from harness.evaluate import _to_tensor, evaluate_model
from harness.paths import shared_dir
from harness.zoo import find_checkpoint

TARGET = 1.15


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lkdn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--dataset", default="Set14")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args(argv)
    shared = shared_dir()
    data_root = args.data_root or (shared / "data" if shared else None)
    dataset = args.dataset if data_root else "Default"
    spec = zoo.get_spec(args.model)
    ckpt = find_checkpoint(spec, args.scale, args.weights_dir or (shared / "weights" if shared else None))
    model = zoo.create(args.model, args.scale, ckpt).eval()
    pairs = benchmark_pairs(dataset, args.scale, data_root)  # warms the LR cache
    inputs = [_to_tensor(p.lr, torch.device("cpu")) for p in pairs]
    with torch.inference_mode():
        model(inputs[0])  # warm-up
    best = None
    for _ in range(args.reps):
        t0 = time.perf_counter()
        evaluate_model(model, dataset, args.scale, data_root, "basicsr")
        wall = time.perf_counter() - t0
        fwd = 0.0
        with torch.inference_mode():
            for x in inputs:
                t = time.perf_counter()
                model(x)
                fwd += time.perf_counter() - t
        ratio = wall / fwd
        print(f"  eval wall {wall:.2f} s, pure forwards {fwd:.2f} s, ratio {ratio:.3f}")
        best = ratio if best is None else min(best, ratio)
    verdict = "ok" if best <= TARGET else "MISS"
    print(
        f"{args.model} x{args.scale} on {dataset} ({len(pairs)} images): eval overhead {best:.3f} "
        f"(target <= {TARGET}) {verdict}; threads {torch.get_num_threads()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
