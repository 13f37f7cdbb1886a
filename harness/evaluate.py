"""PSNR / SSIM of a model on a benchmark set, under one protocol."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.data import SRPair, benchmark_sources, canonical_dataset, to_rgb
from harness.errors import NonFiniteResultError, UsageError
from harness.metrics import check_protocol, psnr_ssim


@dataclass
class EvalResult:
    dataset: str
    scale: int
    protocol: str
    psnr: float
    ssim: float
    n_images: int
    per_image: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole evaluation
    forward_seconds: float = 0.0  # time spent inside model forward passes


def _to_tensor(img: np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(to_rgb(img))).permute(2, 0, 1).float().div_(255.0)
    return x.unsqueeze(0).to(device)


def _name(model: nn.Module) -> str:
    return getattr(getattr(model, "zoo_info", None), "name", type(model).__name__)


def super_resolve(model: nn.Module, lr: np.ndarray, scale: int, device: str | torch.device = "cpu") -> np.ndarray:
    """One LR uint8 image -> SR float image in [0,1]-ish (unclamped) HxWx3, whole-image inference.

    ``model`` takes and returns [0, 1] RGB (``zoo.create`` adapts networks with another input range)."""
    device = torch.device(device)
    with torch.inference_mode():
        out = model(_to_tensor(lr, device))
    if not isinstance(out, torch.Tensor) or out.ndim != 4:
        raise UsageError(f"model {_name(model)} returned {type(out).__name__}, not a 1x3xHxW image tensor")
    if out.shape[-2:] != (lr.shape[0] * scale, lr.shape[1] * scale):
        raise UsageError(
            f"model {_name(model)} returned {tuple(out.shape[-2:])} for an LR image of {lr.shape[:2]}: it does "
            f"not upscale by {scale}"
        )
    out = out[0].float().cpu()
    return out.permute(1, 2, 0).numpy()


def _score(
    sr: np.ndarray, pair: SRPair, scale: int, protocol: str, model: str, where: str, workers: int = 1
) -> dict:
    """One image's row (numpy and scipy.fft release the GIL, so it can run beside a forward)."""
    if not np.isfinite(sr).all():  # NaN cast to uint8 would score as a black image: a believable number
        raise NonFiniteResultError(
            f"model {model} returned NaN/inf for image {pair.name} of {where} (broken weights?); "
            "nothing was stored"
        )
    p, s = psnr_ssim(sr, pair.hr, scale, protocol, workers)
    if not math.isfinite(p):
        raise NonFiniteResultError(
            f"image {pair.name} of {where}: the SR output equals the HR exactly, so its PSNR is "
            "+inf (as BasicSR's calculate_psnr and MATLAB's psnr define it) and no finite set mean can "
            "include it; remove the image (a flat image says nothing about a model) from the set"
        )
    return {"image": pair.name, "psnr": p, "ssim": s}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _done(value: object) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut


def evaluate_model(
    model: nn.Module,
    dataset: str,
    scale: int,
    data_root: str | Path | None = None,
    protocol: str = "basicsr",
    device: str | torch.device = "cpu",
    on_image: Callable[[int, int, str], None] | None = None,
) -> EvalResult:
    """Mean PSNR / SSIM of ``model`` (in eval mode) over a benchmark set; ``on_image(i, n, name)`` for progress.

    Identical SR and HR (PSNR +inf; BasicSR and MATLAB report infinity, they do not cap it) and NaN/inf outputs
    are errors naming the image: a set mean is only ever made of finite per-image values.

    Pipelined: one worker thread reads image i+1 while the network works on image i. Where torch leaves a
    core free (``--threads`` below the core count) the worker also scores image i-1 meanwhile; where torch
    has every core, a thread beside the forward only stalls its parallel regions (measured: worse than
    serial), so image i is scored between forwards with its FFTs on torch's thread count. The numbers are
    those of the serial loop either way: the same functions on the same arrays, rows in image order."""
    check_protocol(protocol)
    t0 = time.perf_counter()
    loaders = benchmark_sources(dataset, scale, data_root)
    model = model.eval().to(device)
    n, rows, fwd = len(loaders), [], 0.0
    where = f"{dataset} x{scale}"
    threads = torch.get_num_threads()
    overlap = torch.device(device).type != "cpu" or threads < _cores()  # a GPU forward leaves the CPU idle
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eval-io") as pool:
        next_pair: Future = pool.submit(loaders[0])
        scoring: Future | None = None
        for i in range(n):
            pair = next_pair.result()
            if i + 1 < n:
                next_pair = pool.submit(loaders[i + 1])  # queued before image i's score: forward i+1 needs it
            t = time.perf_counter()
            sr = super_resolve(model, pair.lr, scale, device)
            fwd += time.perf_counter() - t
            if scoring is not None:
                rows.append(scoring.result())
                if on_image is not None:
                    on_image(i, n, rows[-1]["image"])
            args = (sr, pair, scale, protocol, _name(model), where)
            scoring = pool.submit(_score, *args) if overlap else _done(_score(*args, workers=threads))
        rows.append(scoring.result())
        if on_image is not None:
            on_image(n, n, rows[-1]["image"])
    return EvalResult(
        dataset=canonical_dataset(dataset),
        scale=scale,
        protocol=protocol,
        psnr=float(np.mean([r["psnr"] for r in rows])),
        ssim=float(np.mean([r["ssim"] for r in rows])),
        n_images=len(rows),
        per_image=rows,
        seconds=time.perf_counter() - t0,
        forward_seconds=fwd,
    )
