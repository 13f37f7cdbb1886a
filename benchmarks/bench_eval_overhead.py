"""Eval overhead: wall time of ``evaluate_model`` / sum of pure forward times, LKDN x4 on Set14 (CPU).

    python benchmarks/bench_eval_overhead.py [--model lkdn] [--scale 4] [--dataset Set14] [--data-root DIR]
                                             [--reps 5] [--threads 1 0]

Pure forward times are measured in the same run on the same LR tensors (made beforehand, no metrics, no I/O);
the eval time includes reading images, the LR cache, the metrics and the conversions. The LR cache is warmed
first, as it is on every run after the first. Each thread count (0 = torch's default) is measured in turn in
this one process; eval and pure runs alternate and the ratio is min(eval) / min(pure) over ``--reps``.
Target: <= 1.05 at every thread count. Without a data root the Default set is used.

With several threads, evaluation runs whole images side by side, one thread each (harness.evaluate
``_images_in_flight``), which gets more out of the cores than one multi-threaded forward at a time. So the
script also prints, for the record and without a target, the same forwards run that way (``in flight``: no
reading, no scoring) and eval wall over that: what reading and scoring cost on top of the forwards themselves.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from harness import zoo  # noqa: E402
from harness.data import PairSource, SRPair, benchmark_pairs  # noqa: E402
from harness.evaluate import _images_in_flight, _Job, _to_tensor, evaluate_model  # noqa: E402
from harness.paths import shared_dir  # noqa: E402
from harness.zoo import find_checkpoint  # noqa: E402

TARGET = 1.05


def _pure(model: torch.nn.Module, inputs: list[torch.Tensor]) -> float:
    fwd = 0.0
    with torch.inference_mode():
        for x in inputs:
            t = time.perf_counter()
            model(x)
            fwd += time.perf_counter() - t
    return fwd


class _ForwardOnly(_Job):
    def score(self, sr: object, pair: SRPair) -> dict:
        return {"image": pair.name}


def _in_flight(model: torch.nn.Module, pairs: list[SRPair], scale: int) -> float:
    """Wall time of the forwards alone, scheduled as evaluate_model schedules them (images already read)."""
    job = _ForwardOnly(model, scale, "basicsr", "bench", torch.device("cpu"))
    sources = [PairSource(p.hr.shape[0] * p.hr.shape[1], lambda p=p: p) for p in pairs]
    t = time.perf_counter()
    _images_in_flight(job, sources, lambda row: None)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lkdn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--dataset", default="Set14")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts (0: torch default)")
    args = ap.parse_args(argv)
    shared = shared_dir()
    data_root = args.data_root or (shared / "data" if shared else None)
    dataset = args.dataset if data_root else "Default"
    spec = zoo.get_spec(args.model)
    ckpt = find_checkpoint(spec, args.scale, args.weights_dir or (shared / "weights" if shared else None))
    model = zoo.create(args.model, args.scale, ckpt).eval()
    pairs = benchmark_pairs(dataset, args.scale, data_root)  # warms the LR cache
    inputs = [_to_tensor(p.lr, torch.device("cpu")) for p in pairs]
    default_threads = torch.get_num_threads()
    failed = []
    for threads in args.threads:
        torch.set_num_threads(threads or default_threads)
        _pure(model, inputs[:1])  # warm-up at this thread count
        walls, fwds, flights = [], [], []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            evaluate_model(model, dataset, args.scale, data_root, "basicsr")
            walls.append(time.perf_counter() - t0)
            fwds.append(_pure(model, inputs))
            flight = ""
            if torch.get_num_threads() > 1:
                flights.append(_in_flight(model, pairs, args.scale))
                flight = f", in flight {flights[-1]:.2f} s"
            print(f"  [{torch.get_num_threads()} threads] eval wall {walls[-1]:.2f} s, pure forwards "
                  f"{fwds[-1]:.2f} s{flight}, ratio {walls[-1] / fwds[-1]:.3f}")  # fmt: skip
        ratio = min(walls) / min(fwds)
        verdict = "ok" if ratio <= TARGET else "MISS"
        if verdict == "MISS":
            failed.append(threads)
        print(
            f"{args.model} x{args.scale} on {dataset} ({len(pairs)} images), {torch.get_num_threads()} threads: "
            f"eval overhead {ratio:.3f} (min/min of {args.reps}; target <= {TARGET}) {verdict}"
        )
        if flights:
            print(f"  (pure forwards in flight / one at a time: {min(flights) / min(fwds):.3f}; eval wall / "
                  f"in flight: {min(walls) / min(flights):.3f}, no target)")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
