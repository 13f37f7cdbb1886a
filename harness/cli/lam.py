"""``lmfn-bench lam``: Local Attribution Map and diffusion index of zoo models for one image and window."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import tasks
from harness.cli.common import (
    DEFAULT_STORE_PATH,
    ForceOpt,
    JsonOpt,
    ModelsOpt,
    StoreOpt,
    WeightsDirOpt,
    check_scales,
    echo,
    friendly_errors,
    task_bars,
)  # fmt: skip
from harness.cli.output import json_line, no_checkpoint_line
from harness.errors import UsageError
from harness.lam import LR_RESIZES, LamSettings
from harness.lam_tasks import DEFAULT_LAM_OUT, LamOptions, lam_matrix


def _int(option: str, value: str) -> int:
    """Integers parsed here, not by typer, so a bad value is one line like every other bad input."""
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{option} must be an integer, got '{value}'") from None


def _float(option: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"{option} must be a number, got '{value}'") from None


def _jobs(model: list[str] | None, all_models: bool, scale: int, checkpoint: Path | None) -> list[tasks.Job]:
    if all_models:
        if model or checkpoint:
            raise UsageError("--all runs every zoo model with weights; drop --model / --checkpoint")
        return tasks.zoo_jobs(None, [scale])
    if not model:
        if checkpoint is None:
            raise UsageError(
                "give --model NAME, --checkpoint FILE or --all; `lmfn-bench models` lists the zoo"
            )
        return [tasks.Job(None, scale, checkpoint)]  # type: ignore[arg-type]  # zoo.create detects it
    jobs = tasks.zoo_jobs(model, [scale])
    if checkpoint is not None:
        if len(jobs) != 1:
            raise UsageError("--checkpoint belongs to one model: give a single --model")
        jobs = [tasks.Job(jobs[0].model, scale, checkpoint)]
    return jobs


def _json(row: dict) -> None:
    extra, metrics = row["extra"], row["metrics"]
    settings = {k: extra[k] for k in (*LamSettings.__dataclass_fields__, "image")}
    json_line(
        {
            "model": row["model"],
            "scale": row["scale"],
            "dataset": row["dataset"],
            "di": metrics["di"],
            "gini": metrics["gini"],
            **settings,
            "seconds": metrics["seconds"],
            "map_png": metrics["map_png"],
            "panel_png": extra.get("panel_png", ""),
            "checkpoint": row["checkpoint"],
            "checkpoint_hash": row["checkpoint_hash"],
        }  # fmt: skip
    )


def _line(row: dict) -> None:
    m, e = row["metrics"], row["extra"]
    where = f"; map {m['map_png']}" if m["map_png"] else ""
    echo(
        f"{row['model']} x{row['scale']} {row['dataset']} window x={e['x']} y={e['y']} size {e['window']}: "
        f"DI {m['di']:.3f} (Gini {m['gini']:.5f}) in {m['seconds']:.1f} s{where}"
    )


@friendly_errors
def command(
    model: ModelsOpt = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="HR image (mod-cropped to the scale).")
    ] = None,
    x: Annotated[
        str | None, typer.Option("--x", metavar="INT", help="Window's left column, HR pixels.")
    ] = None,
    y: Annotated[str | None, typer.Option("--y", metavar="INT", help="Window's top row, HR pixels.")] = None,
    window: Annotated[str, typer.Option(metavar="INT", help="Window side, HR pixels.")] = "16",
    sigma: Annotated[
        str, typer.Option(metavar="FLOAT", help="Blur path's starting sigma (LR pixels).")
    ] = "1.2",
    fold: Annotated[str, typer.Option(metavar="INT", help="Path steps.")] = "50",
    kernel_size: Annotated[
        str, typer.Option("--kernel-size", metavar="INT", help="Side of the Gaussian kernels (odd).")
    ] = "9",
    lr_resize: Annotated[
        str,
        typer.Option("--lr-resize", help=f"LR from HR: {' | '.join(LR_RESIZES)} (pil: the official LAM's)."),
    ] = "pil",
    scale: Annotated[str, typer.Option("--scale", "-s", metavar="INT", help="Upscaling factor.")] = "4",
    checkpoint: Annotated[Path | None, typer.Option(help="Weights file to load (strict).")] = None,
    weights_dir: WeightsDirOpt = None,
    all_models: Annotated[
        bool,
        typer.Option("--all", help="Every zoo model with weights at --scale; rows already stored skipped."),
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the PNGs (demo-style panel, map over LR).")
    ] = DEFAULT_LAM_OUT,
    chunk: Annotated[
        str | None, typer.Option(metavar="INT", help="Path images per forward pass (default: by size).")
    ] = None,
    force: ForceOpt = False,
    store: StoreOpt = DEFAULT_STORE_PATH,
    json_out: JsonOpt = False,
) -> None:
    """LAM (Gu & Dong, CVPR 2021) and diffusion index, as the official LAM code computes them, into the store."""
    if image is None or x is None or y is None:
        raise UsageError("give --image HR.png --x COLUMN --y ROW (the window's top-left corner, HR pixels)")
    settings = LamSettings(
        _int("--x", x), _int("--y", y), _int("--window", window), _float("--sigma", sigma), _int("--fold", fold),
        _int("--kernel-size", kernel_size), lr_resize,
    ).checked()  # fmt: skip
    jobs = _jobs(model, all_models, check_scales([_int("--scale", scale)], [4])[0], checkpoint)
    options = LamOptions(image, settings, out, _int("--chunk", chunk) if chunk else None)
    with task_bars(len(jobs), "models") as bars:
        res = lam_matrix(
            jobs, options, weights_dir=weights_dir, store=store, force=force or not all_models,
            missing_ok=all_models, on=bars, on_row=_json if json_out else _line,
        )  # fmt: skip
    if res.skipped:
        echo(f"{res.skipped} LAM result(s) already in {store} were skipped (use --force to recompute)")
    if res.no_checkpoint:
        echo(no_checkpoint_line(res.no_checkpoint, weights_dir, "run"))
