"""Orchestration of ``lmfn-bench lam``: the LAM diffusion index of one model, or of every zoo model with
weights, for one image and window, into the store (one ``lam`` row per model, see :func:`harness.results.lam_row`).

Uses the evaluation matrix's pieces (:mod:`harness.tasks`): jobs, the lazily opened store, the skip policy
and the progress :class:`~harness.tasks.Reporter` (ticks over the path's chunks).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import zoo
from harness.data import canonical_dataset
from harness.errors import DataError, MissingFileError
from harness.lam import LamResult, LamSettings, check_window, compute_lam, lam_images, write_pictures
from harness.results import lam_row
from harness.settings import BENCHMARKS
from harness.tasks import Job, LazyStore, MatrixResult, Reporter, loaded_jobs, skip_existing

DEFAULT_LAM_OUT = Path("lmfn-bench-out") / "lam"


@dataclass(frozen=True)
class LamOptions:
    image: Path
    settings: LamSettings
    out_dir: Path | None = DEFAULT_LAM_OUT  # None: no PNG (map_png "")
    chunk: int | None = None  # path images per pass (None: by image size, harness.lam.default_chunk)


def image_dataset(image: Path) -> str:
    """``<set>/<stem>`` for an image of a benchmark set (``.../<set>/HR/x.png`` or ``.../<set>/x.png``), else
    the file stem."""
    folder = image.resolve().parent
    if folder.name.upper() == "HR":
        folder = folder.parent
    try:
        name = canonical_dataset(folder.name)
    except DataError:
        return image.stem
    return f"{name}/{image.stem}" if name in BENCHMARKS else image.stem


def _pictures(res: LamResult, out_dir: Path | None, model: str, dataset: str) -> tuple[str, str]:
    if out_dir is None:
        return "", ""
    stem = re.sub(r"[^A-Za-z0-9.@-]+", "_", f"{model}_x{res.scale}_{dataset}_{res.settings.key()}")
    panel, amap = write_pictures(res, out_dir / stem)
    return str(panel.resolve()), str(amap.resolve())  # absolute: the report may run elsewhere


def _images(image: Path, scales: set[int], settings: LamSettings) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(HR, LR) per scale, the window checked against each before any model is built."""
    if not image.is_file():
        raise MissingFileError(f"image {image} does not exist")
    pairs = {s: lam_images(image, s, settings.lr_resize) for s in sorted(scales)}
    for hr, _ in pairs.values():
        check_window(settings, *hr.shape[:2])
    return pairs


def lam_matrix(
    jobs: list[Job],
    options: LamOptions,
    *,
    weights_dir: str | Path | None = None,
    store: str | Path,
    force: bool = True,
    missing_ok: bool = False,
    on: Reporter | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> MatrixResult:
    """LAM of every job on ``options.image`` into the store. ``force=False`` skips rows the store has (same
    model, checkpoint, image and settings); ``missing_ok`` lists models without weights instead of failing."""
    settings = options.settings.checked()
    pairs = _images(options.image, {j.scale for j in jobs}, settings)
    dataset, key = image_dataset(options.image), settings.key()
    on, db, res = on or Reporter(), LazyStore(store), MatrixResult()
    for job, model, source, run in loaded_jobs(jobs, weights_dir, missing_ok, res, on):
        info = zoo.zoo_info(model)
        probe = {"kind": "lam", "model": info.name, "scale": job.scale, "dataset": dataset, "protocol": "",
                 "source": source, "checkpoint_hash": info.checkpoint_hash, "device_key": key}  # fmt: skip
        if skip_existing(db, probe, force):
            res.skipped += 1
            on.advance()
            continue
        on.start(f"LAM {info.name} x{job.scale}")
        hr, lr = pairs[job.scale]
        lam = compute_lam(model, hr, lr, job.scale, settings, chunk=options.chunk, on_chunk=on.tick)
        panel, amap = _pictures(lam, options.out_dir, info.name, dataset)
        row = lam_row(
            info, dataset, {**settings.as_dict(), "image": str(options.image.resolve())}, key,
            {"di": lam.di, "gini": lam.gini, "seconds": lam.seconds, "map_png": amap}, "cpu",
            source=source, extra={"panel_png": panel, **run},
        )  # fmt: skip
        res.record(db, row, on_row)
        on.finish()
        on.advance()
    return res
