"""LAM of LKDN x4 on a 256x256 HR crop: wall time at 1 thread and at the default thread count, and the batched
path against the official one-by-one loop, both measured in this run.

    python benchmarks/bench_lam.py [--repeats 2] [--short-fold 10] [--threads N]

Target: the full LAM (fold 50) under 30 s on 2 CPU cores (1 thread or the default count, the faster).
Weights: the official LKDN_x4.pth from ../shared/weights when present, else fresh ones (same cost). Image: the
centre 256x256 of Set14 baboon when ../shared is present, else of the embedded default set's first photo. The
one-by-one ratio runs both ways on a shorter fold (``--short-fold``), alternating, min of ``--repeats``, at
each thread count. Exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from harness import zoo  # noqa: E402
from harness.data import default_eval_images, read_image, to_rgb  # noqa: E402
from harness.lam import LamSettings, compute_lam, default_chunk, lam_images  # noqa: E402
from harness.paths import shared_dir  # noqa: E402

TARGET_S = 30.0
SIZE = 256


def _crop() -> tuple[np.ndarray, str]:
    shared = shared_dir()
    baboon = shared / "data/benchmark/Set14/HR/baboon.png" if shared else None
    if baboon is not None and baboon.is_file():
        img, name = to_rgb(read_image(baboon)), "Set14 baboon"
    else:
        name, img = default_eval_images()[0]
        img = to_rgb(img)
    h, w = img.shape[:2]
    top, left = (h - SIZE) // 2, (w - SIZE) // 2
    return np.ascontiguousarray(img[top : top + SIZE, left : left + SIZE]), name


def _model() -> tuple[torch.nn.Module, str]:
    shared = shared_dir()
    weights = shared / "weights" if shared and (shared / "weights").is_dir() else None
    model = zoo.create("lkdn", 4, weights_dir=weights)
    return model, ("official LKDN_x4 weights" if model.zoo_info.checkpoint else "fresh weights")


def _best(
    model: torch.nn.Module, hr: np.ndarray, lr: np.ndarray, s: LamSettings, chunk: int, n: int
) -> float:
    return min(compute_lam(model, hr, lr, 4, s, chunk=chunk).seconds for _ in range(n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--short-fold", type=int, default=10, help="fold of the batched vs one-by-one comparison")
    ap.add_argument("--threads", type=int, default=None, help="the default thread count (default: torch's)")
    args = ap.parse_args(argv)
    default_threads = args.threads or torch.get_num_threads()
    crop, name = _crop()
    model, weights = _model()
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(crop).save(Path(tmp) / "crop.png")
        hr, lr = lam_images(Path(tmp) / "crop.png", 4)
    full, short = LamSettings(120, 120), LamSettings(120, 120, fold=args.short_fold)
    chunk = default_chunk(*lr.shape[:2])
    print(f"LAM of LKDN x4 ({weights}) on a {SIZE}x{SIZE} crop of {name}: window 16 at (120, 120), "
          f"fold 50, batches of {chunk} path images")  # fmt: skip
    seconds = {}
    for threads in dict.fromkeys((1, default_threads)):
        torch.set_num_threads(threads)
        seconds[threads] = _best(model, hr, lr, full, chunk, args.repeats)
        one, batched = [], []
        for _ in range(args.repeats):  # alternate, so load changes hit both
            one.append(_best(model, hr, lr, short, 1, 1))
            batched.append(_best(model, hr, lr, short, chunk, 1))
        print(
            f"  {threads} thread(s): fold 50 {seconds[threads]:.1f} s (min of {args.repeats}); fold "
            f"{args.short_fold}: one by one (the official loop) {min(one):.2f} s, batched {min(batched):.2f} s, "
            f"speed-up x{min(one) / min(batched):.2f}"
        )
    # on a shared machine OpenMP threads contend with other work: the target holds if either count meets it
    best = min(seconds, key=seconds.get)
    ok = seconds[best] < TARGET_S
    print(
        f"target: fold 50 under {TARGET_S:.0f} s: {'met' if ok else 'MISSED'} ({seconds[best]:.1f} s at {best} thread(s))"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
