"""``lmfn-bench profile``: params, FLOPs, latency and peak memory into the results store."""

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
    ShardOpt,
    StoreOpt,
    check_scales,
    echo,
    friendly_errors,
    parse_shard,
    parse_size,
    task_bars,
)  # fmt: skip
from harness.cli.output import profile_json, profile_table
from harness.errors import UsageError


@friendly_errors
def command(
    model: ModelsOpt = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every zoo model at every scale it has.")] = False,
    scale: Annotated[
        list[int] | None, typer.Option("--scale", "-s", help="Scale(s); default 4, with --all every scale.")
    ] = None,
    ntire: Annotated[
        bool,
        typer.Option(help="NTIRE mode: FLOPs and latency for a 256x256 LR input instead of 1280x720 output."),
    ] = False,
    latency: Annotated[bool, typer.Option(help="Also time the forward pass.")] = True,
    latency_size: Annotated[
        str | None, typer.Option(help="LR size HxW for latency (default: the FLOPs input size).")
    ] = None,
    device: Annotated[
        str, typer.Option(help="cpu or cuda[:i]; CUDA times with CUDA events and records peak memory.")
    ] = "cpu",
    dtype: Annotated[str, typer.Option(help="fp32 | bf16 | fp16 (fp16 needs CUDA).")] = "fp32",
    runs: Annotated[int | None, typer.Option(help="Timed runs (default 100 on GPU, 10 on CPU).")] = None,
    warmup: Annotated[int | None, typer.Option(help="Warm-up runs (default 20 on GPU, 2 on CPU).")] = None,
    channels_last: Annotated[bool, typer.Option(help="Run in channels_last memory format.")] = False,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the model before timing.")
    ] = False,
    thop: Annotated[bool, typer.Option(help="Cross-check FLOPs with thop.")] = True,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Profile the network this file holds (read off its weights without --model).")
    ] = None,
    force: ForceOpt = False,
    shard: ShardOpt = None,
    store: StoreOpt = DEFAULT_STORE_PATH,
    json_out: JsonOpt = False,
) -> None:
    """Params, FLOPs (multiply-adds: paper / fvcore / full / thop columns), latency and peak memory."""
    options = tasks.ProfileOptions(
        ntire=ntire, thop=thop, latency=latency, latency_size=parse_size(latency_size), device=device,
        dtype=dtype, runs=runs, warmup=warmup, channels_last=channels_last, compile=compile_model,
    ).checked()  # fmt: skip
    scales = check_scales(scale, [] if all_models else [4])
    if all_models and (model or checkpoint):
        raise UsageError("--all profiles the whole zoo; drop --model / --checkpoint")
    if not all_models and not model and checkpoint is None:
        raise UsageError("give --model NAME, --checkpoint FILE (or --all); `lmfn-bench models` lists the zoo")
    i, n = parse_shard(shard)
    if checkpoint is not None:
        jobs = tasks.checkpoint_jobs(model, check_scales(scale, []), checkpoint)
    else:
        jobs = tasks.zoo_jobs(None if all_models else model, scales, (i, n))
    with task_bars(len(jobs), "profile") as bars:
        res = tasks.profile_matrix(
            jobs, options, store=store, force=force, on=bars, on_row=profile_json if json_out else None
        )
    if not json_out:
        profile_table(res.rows)
    if res.skipped:
        echo(f"{res.skipped} profile(s) already in {store} were skipped (use --force to re-measure)")
