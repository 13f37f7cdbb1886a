"""``lmfn-bench pipeline``: the whole job (the README's first command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import tasks
from harness.cli.common import (
    DEFAULT_STORE_PATH,
    DataRootOpt,
    StoreOpt,
    WeightsDirOpt,
    check_scales,
    echo,
    friendly_errors,
    out,
    task_bars,
)  # fmt: skip
from harness.cli.output import no_checkpoint_line
from harness.settings import ABLATION_SET
from reports.inputs import write_reports


@friendly_errors
def command(
    data_root: DataRootOpt = None,
    weights_dir: WeightsDirOpt = None,
    scale: Annotated[list[int] | None, typer.Option("--scale", "-s", help="Scale(s); default 4.")] = None,
    grid_iters: Annotated[
        int,
        typer.Option(
            help="Iterations of each network of the ablation grid (Tables 1-2, 10 networks, seed 0; its LMFN is "
            "Table 3's trained LMFN). The default keeps the whole job near 10 minutes on 2 CPU cores."
        ),
    ] = tasks.PipelineOptions.grid_iters,
    latency: Annotated[bool, typer.Option(help="Also time every model (slow on CPU).")] = False,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the training run and the reports.")
    ] = Path("lmfn-bench-out"),
    store: StoreOpt = DEFAULT_STORE_PATH,
    force: Annotated[bool, typer.Option(help="Redo steps whose results the store already has.")] = False,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Evaluate / profile only these models or patterns (default: the zoo)."),
    ] = None,
) -> None:
    """The whole job: train the ablation grid at a small budget, evaluate and profile the zoo, write HTML /
    LaTeX / Markdown reports (Tables 1-3, Fig. 1).

    Runs on the embedded Default set when no data root is given; steps already in the store are skipped.
    """
    scales = check_scales(scale, [4])
    opts = tasks.PipelineOptions(
        data_root=data_root, weights_dir=weights_dir, scales=tuple(scales), grid_iters=grid_iters,
        latency=latency, out_dir=out_dir, store=store, force=force, models=tuple(models) if models else None,
    )  # fmt: skip
    res = tasks.run_pipeline(opts, echo, task_bars)
    if res.no_checkpoint:
        echo(no_checkpoint_line(res.no_checkpoint, weights_dir))
    echo(f"[4/4] writing reports to {out_dir / 'report'}")
    for path in write_reports(store, ("all",), out_dir / "report", ABLATION_SET, max(scales)):
        out.print(str(path), highlight=False, soft_wrap=True)
