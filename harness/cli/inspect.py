"""``lmfn-bench inspect FILE``: what a checkpoint holds, read off its weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness import tasks
from harness.cli.common import JsonOpt, friendly_errors, out
from harness.cli.output import json_line
from harness.errors import UsageError


@friendly_errors
def command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint file (.pth / .pt / .safetensors).")],
    scale: Annotated[
        int | None, typer.Option("--scale", "-s", help="Scale hint the weights must match.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only 'spandrel': skip the zoo's detectors.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Detect the architecture, scale and configuration of a checkpoint (zoo detectors, then spandrel)."""
    if model not in (None, "spandrel"):
        raise UsageError("inspect reads the model off the weights; --model takes only 'spandrel'")
    info = tasks.inspect_checkpoint(checkpoint, scale, model)
    if json_out:
        json_line(info)
        return
    for key, value in info.items():
        shown = ", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else value
        shown = ", ".join(map(str, shown)) if isinstance(shown, list) else shown
        out.print(f"{key:>14}: {shown}", highlight=False, markup=False, soft_wrap=True)
