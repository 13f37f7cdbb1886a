"""PSNR / SSIM of a model on a benchmark set, under one protocol."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.data import PairSource, SRPair, benchmark_sources, canonical_dataset, to_rgb
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


def _score(sr: np.ndarray, pair: SRPair, scale: int, protocol: str, model: str, where: str) -> dict:
    """One image's row (numpy and scipy.ndimage release the GIL, so it can run beside a forward)."""
    if not np.isfinite(sr).all():  # NaN cast to uint8 would score as a black image: a believable number
        raise NonFiniteResultError(
            f"model {model} returned NaN/inf for image {pair.name} of {where} (broken weights?); "
            "nothing was stored"
        )
    p, s = psnr_ssim(sr, pair.hr, scale, protocol)
    if not math.isfinite(p):
        raise NonFiniteResultError(
            f"image {pair.name} of {where}: the SR output equals the HR exactly, so its PSNR is "
            "+inf (as BasicSR's calculate_psnr and MATLAB's psnr define it) and no finite set mean can "
            "include it; remove the image (a flat image says nothing about a model) from the set"
        )
    return {"image": pair.name, "psnr": p, "ssim": s}


MAX_IMAGES_IN_FLIGHT = 8  # each image in flight holds its own activations: bounds memory on many-core machines


@dataclass(frozen=True)
class _Job:
    model: nn.Module
    scale: int
    protocol: str
    where: str
    device: torch.device

    def forward(self, pair: SRPair) -> tuple[np.ndarray, float]:
        t = time.perf_counter()
        sr = super_resolve(self.model, pair.lr, self.scale, self.device)
        return sr, time.perf_counter() - t

    def score(self, sr: np.ndarray, pair: SRPair) -> dict:
        return _score(sr, pair, self.scale, self.protocol, _name(self.model), self.where)

    def whole_image(self, source: PairSource) -> tuple[dict, float]:
        pair = source()
        sr, seconds = self.forward(pair)
        return self.score(sr, pair), seconds


def _pipelined(job: _Job, sources: list[PairSource], tick: Callable[[dict], None]) -> float:
    """One forward at a time (a GPU, or one CPU thread): a side thread reads image i+1 and scores image i-1
    while the network works on image i. Returns the seconds spent in forwards."""
    fwd = 0.0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eval-io") as pool:
        next_pair: Future = pool.submit(sources[0])
        scoring: Future | None = None
        for i in range(len(sources)):
            pair = next_pair.result()
            if i + 1 < len(sources):
                next_pair = pool.submit(sources[i + 1])  # queued before image i's score: forward i+1 needs it
            sr, seconds = job.forward(pair)
            fwd += seconds
            if scoring is not None:
                tick(scoring.result())
            scoring = pool.submit(job.score, sr, pair)
        tick(scoring.result())
    return fwd


def _images_in_flight(job: _Job, sources: list[PairSource], tick: Callable[[dict], None]) -> float:
    """CPU with several threads: whole images (read, forward, score) run side by side, each forward on its
    share of the threads. Measured on 2 cores (LKDN x4, Set14): two 1-thread forwards side by side finish the
    set 12 % sooner than one 2-thread forward at a time, which pays for the scoring; the scoring cannot hide
    beside a forward that holds every core (its parallel regions stall). Returns the forward seconds, summed
    over images (they overlap, so the sum exceeds the wall time)."""
    threads = torch.get_num_threads()
    workers = min(threads, MAX_IMAGES_IN_FLIGHT, len(sources))
    fwd = 0.0
    try:  # torch's thread count is process-wide: each worker sets its share, and it is restored after
        pool = ThreadPoolExecutor(workers, "eval", initializer=torch.set_num_threads, initargs=(threads // workers,))
        with pool:
            largest_first = sorted(range(len(sources)), key=lambda i: -sources[i].pixels)  # the shortest tail
            futures = {i: pool.submit(job.whole_image, sources[i]) for i in largest_first}
            try:
                for _, future in sorted(futures.items()):  # rows in image order, whatever order they finish in
                    row, seconds = future.result()
                    fwd += seconds
                    tick(row)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # a bad image stops the set: the rest are not run
                raise
    finally:
        torch.set_num_threads(threads)
    return fwd


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

    Reading and scoring overlap the forwards (``_pipelined`` on a GPU or one CPU thread, ``_images_in_flight``
    on several CPU threads). Each image's numbers are those of the serial loop run with the same threads per
    forward: the same functions on the same arrays, rows in image order."""
    check_protocol(protocol)
    t0 = time.perf_counter()
    sources = benchmark_sources(dataset, scale, data_root)
    device = torch.device(device)
    job = _Job(model.eval().to(device), scale, protocol, f"{dataset} x{scale}", device)
    rows: list[dict] = []

    def tick(row: dict) -> None:
        rows.append(row)
        if on_image is not None:
            on_image(len(rows), len(sources), row["image"])

    parallel = device.type == "cpu" and torch.get_num_threads() > 1
    fwd = (_images_in_flight if parallel else _pipelined)(job, sources, tick)
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
