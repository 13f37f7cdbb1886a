"""``lmfn-bench eval``: PSNR / SSIM of zoo models on benchmark sets into the results store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import tasks
from harness.cli.common import (
    DEFAULT_STORE_PATH,
    DataRootOpt,
    ForceOpt,
    JsonOpt,
    ModelsOpt,
    ShardOpt,
    StoreOpt,
    WeightsDirOpt,
    check_scales,
    echo,
    friendly_errors,
    parse_shard,
    task_bars,
)  # fmt: skip
from harness.cli.output import eval_json, eval_table, no_checkpoint_line
from harness.data import available_datasets, canonical_dataset
from harness.errors import DataError, UsageError
from harness.metrics import check_protocol
from harness.settings import DEFAULT_PROTOCOL, PROTOCOLS


def _jobs(models: list[str] | None, all_models: bool, scales: list[int] | None, checkpoint: Path | None) -> list:
    if all_models:
        if models or checkpoint:
            raise UsageError("--all evaluates the whole zoo; drop --model / --checkpoint")
        return tasks.zoo_jobs(None, scales or [])
    if checkpoint is not None:  # without --model the network is read off the weights
        return tasks.checkpoint_jobs(models, scales, checkpoint)
    if not models:
        raise UsageError("give --model NAME, --checkpoint FILE (or --all); `lmfn-bench models` lists the zoo")
    return tasks.zoo_jobs(models, scales or [4])


@friendly_errors
def command(
    model: ModelsOpt = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", "-d", help="Benchmark set(s); default: all available.")
    ] = None,
    scale: Annotated[
        list[int] | None,
        typer.Option("--scale", "-s", help="Upscaling factor(s): 2, 3, 4. Default 4; with --all every scale."),
    ] = None,
    data_root: DataRootOpt = None,
    protocol: Annotated[
        str, typer.Option(help=f"Evaluation protocol: {' | '.join(PROTOCOLS)} (see DESIGN.md).")
    ] = DEFAULT_PROTOCOL,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Weights file to load (strict). Without --model the network and scale are read off it (zoo "
            "detectors, then spandrel's architectures; --model spandrel forces spandrel). A run folder's file "
            "is recorded as 'trained'."
        ),
    ] = None,
    weights_dir: WeightsDirOpt = None,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every zoo model x scale x available dataset; models without a checkpoint are listed, not "
            "evaluated, and results already in the store are skipped (unless --force).",
        ),
    ] = False,
    force: ForceOpt = False,
    shard: ShardOpt = None,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
    store: StoreOpt = DEFAULT_STORE_PATH,
    json_out: JsonOpt = False,
) -> None:
    """Measure PSNR / SSIM (Y channel) on benchmark sets and write them to the results store."""
    check_protocol(protocol)
    jobs = _jobs(model, all_models, check_scales(scale, []) or None, checkpoint)
    i, n = parse_shard(shard)
    sets = [canonical_dataset(d) for d in dataset] if dataset else available_datasets(data_root)
    if not sets:
        raise DataError(f"no benchmark sets with images under {data_root}")
    with task_bars(len(jobs[i::n]), "models") as bars:
        res = tasks.evaluate_matrix(
            jobs[i::n], sets, data_root=data_root, protocol=protocol, weights_dir=weights_dir, device=device,
            store=store, force=force or not all_models, missing_ok=all_models, on=bars,
            on_row=eval_json if json_out else None,
        )  # fmt: skip
    if not json_out:
        eval_table(res.rows)
    if res.skipped:
        echo(f"{res.skipped} result(s) already in {store} were skipped (use --force to re-measure)")
    if res.no_checkpoint:
        echo(no_checkpoint_line(res.no_checkpoint, weights_dir))
