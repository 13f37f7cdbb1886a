"""``lmfn-bench visuals``: Fig. 5's SR crops (one image, one box, each model) cached beside the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import (
    DEFAULT_STORE_PATH,
    DataRootOpt,
    ForceOpt,
    JsonOpt,
    ModelsOpt,
    StoreOpt,
    WeightsDirOpt,
    check_scales,
    echo,
    friendly_errors,
)  # fmt: skip
from harness.cli.output import json_line


@friendly_errors
def command(
    model: ModelsOpt = None,
    image: Annotated[
        str | None,
        typer.Option(help="SET/NAME (file stem). Default: the first image of Urban100, else of Manga109."),
    ] = None,
    box: Annotated[
        str | None, typer.Option(help="x,y,w,h in HR pixels (x = column). Default: a 96x96 centre square.")
    ] = None,
    scale: Annotated[int, typer.Option("--scale", "-s", help="Upscaling factor: 2, 3, 4.")] = 4,
    data_root: DataRootOpt = None,
    weights_dir: WeightsDirOpt = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Weights file for a single --model.")] = None,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
    store: StoreOpt = DEFAULT_STORE_PATH,
    force: ForceOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Super-resolve one image with each model (bicubic first; default: every model with weights in
    --weights-dir), crop the box and store each crop's PSNR as a `visual` row for the report's Fig. 5."""
    from harness.visuals import make_visuals, parse_box

    check_scales([scale], [scale])
    parsed = parse_box(box) if box else None
    rows = make_visuals(
        model, store=store, image=image, box=parsed, scale=scale, data_root=data_root,
        weights_dir=weights_dir, checkpoint=checkpoint, device=device, force=force,
    )  # fmt: skip
    for r in rows:
        m = r["metrics"]
        if json_out:
            json_line({"model": r["model"], "scale": r["scale"], "image": r["dataset"], **m})
        else:
            where = f"{r['model']:<16} x{r['scale']} {r['dataset']} box {m['box']}"
            echo(f"{where}: crop PSNR {m['crop_psnr']:.2f} dB  {m['crop_png']}")
