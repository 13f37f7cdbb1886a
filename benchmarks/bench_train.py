"""Training throughput: full training iterations/s against the pure forward+backward+step time of the same model
and batch, both measured in one run.

    python benchmarks/bench_train.py [--model lkdn] [--scale 4] [--batch-size 8] [--patch-size 32]
                                     [--workers 0] [--steps 10] [--threads 1 0] [--data-root DIR --train-data T91]

"pure" steps reuse one batch already in memory; "full" steps draw every batch through the real pipeline
(PatchDataset crops + augmentation, DataLoader, copy to device), run the EMA update and read the loss back
as the loop does every step. The two kinds alternate step by step so that load changes on a shared machine
hit both alike; medians and minima are compared, at each thread count in turn (0 = torch's default).
Target: pure/full time ratio >= 0.97 (median) at every thread count: data, EMA and bookkeeping cost < 3%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from harness.train import TrainConfig, Trainer, resolve_sources  # noqa: E402
from harness.train import distributed as ddp  # noqa: E402

TARGET = 0.97


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lkdn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10, help="timed steps of each kind")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts (0: torch default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--train-data", action="append", default=None)
    args = ap.parse_args(argv)

    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.from_profile(
            args.model, "smoke", scale=args.scale, batch_size=args.batch_size, patch_size=args.patch_size,
            workers=args.workers, device=args.device, data_root=args.data_root,
            train_data=resolve_sources(args.train_data, args.data_root), val_dataset="none", out=tmp,
        )  # fmt: skip
        tr = Trainer(cfg, echo=lambda m: None)
        missed = [t for t in args.threads if not _compare(tr, args, t or default_threads)]
    return 1 if missed else 0


def _compare(tr: Trainer, args: argparse.Namespace, threads: int) -> bool:
    torch.set_num_threads(threads)
    batches = tr.batches(start=0)
    fixed = next(batches)
    sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)

    def pure() -> None:
        loss = tr.forward_loss(*fixed)
        tr.opt.zero_grad(set_to_none=True)
        loss.backward()
        tr.opt.step()

    def full() -> None:
        loss = tr.step(*next(batches))
        ddp.agree([float(loss), 0.0, 0.0], tr.dist, tr.device)  # the loop's per-step read-back

    for fn in (pure, full):  # warm-up (and, with workers, let the prefetch queue fill)
        fn()
    times: dict[str, list[float]] = {"pure": [], "full": []}
    for _ in range(args.steps):
        for name, fn in (("pure", pure), ("full", full)):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)

    p, f = statistics.median(times["pure"]), statistics.median(times["full"])
    ratio, min_ratio = p / f, min(times["pure"]) / min(times["full"])
    ok = ratio >= TARGET
    print(f"model {args.model} x{args.scale}, batch {args.batch_size} of {args.patch_size}x{args.patch_size} LR, "
          f"workers {args.workers}, threads {torch.get_num_threads()}, device {tr.device}")  # fmt: skip
    print(f"  pure fwd+bwd+step: {p * 1e3:8.1f} ms/it ({1 / p:.3f} it/s)  [min {min(times['pure']) * 1e3:.1f}]")
    print(f"  full training it:  {f * 1e3:8.1f} ms/it ({1 / f:.3f} it/s)  [min {min(times['full']) * 1e3:.1f}]")
    print(
        f"  [{threads} threads] ratio pure/full: {ratio:.3f} (median), {min_ratio:.3f} (min) "
        f"(target >= {TARGET}) -> {'OK' if ok else 'BELOW TARGET'}"
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())
