"""Training throughput: full training iterations/s against the pure forward+backward+step time of the same model
and batch, both measured in one run.

    python benchmarks/bench_train.py [--model lkdn] [--scale 4] [--batch-size 8] [--patch-size 32]
                                     [--workers 0] [--steps 6] [--threads N] [--data-root DIR --train-data T91]

"pure" steps reuse one batch already in memory; "full" steps draw every batch through the real pipeline
(PatchDataset crops + augmentation, DataLoader, copy to device) and also run the EMA update. The two kinds
alternate step by step so that load changes on a shared machine hit both alike; medians are compared.
Target: pure/full time ratio >= 0.9 (the data pipeline is not the bottleneck).
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

TARGET = 0.9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lkdn")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--steps", type=int, default=6, help="timed steps of each kind")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--train-data", action="append", default=None)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.from_profile(
            args.model, "smoke", scale=args.scale, batch_size=args.batch_size, patch_size=args.patch_size,
            workers=args.workers, threads=args.threads, device=args.device, data_root=args.data_root,
            train_data=resolve_sources(args.train_data, args.data_root), val_dataset="none", out=tmp,
        )  # fmt: skip
        tr = Trainer(cfg, echo=lambda m: None)
        batches = tr.batches(start=0)
        fixed = next(batches)
        sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)

        def pure() -> None:
            loss = tr.forward_loss(*fixed)
            tr.opt.zero_grad(set_to_none=True)
            loss.backward()
            tr.opt.step()

        def full() -> None:
            tr.step(*next(batches))

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
    ratio = p / f
    print(f"model {args.model} x{args.scale}, batch {args.batch_size} of {args.patch_size}x{args.patch_size} LR, "
          f"workers {args.workers}, threads {torch.get_num_threads()}, device {tr.device}")  # fmt: skip
    print(f"pure fwd+bwd+step: {p * 1e3:8.1f} ms/it ({1 / p:.3f} it/s)  [min {min(times['pure']) * 1e3:.1f}]")
    print(f"full training it:  {f * 1e3:8.1f} ms/it ({1 / f:.3f} it/s)  [min {min(times['full']) * 1e3:.1f}]")
    print(
        f"ratio pure/full: {ratio:.3f} (target >= {TARGET}) -> {'OK' if ratio >= TARGET else 'BELOW TARGET'}"
    )
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
