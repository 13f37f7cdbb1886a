"""``lmfn-bench weights``: official checkpoints from their public sources into the weights cache."""

from __future__ import annotations

from typing import Annotated

import typer

from harness import tasks, weights
from harness.cli.common import JsonOpt, friendly_errors, out
from harness.cli.output import json_line

app = typer.Typer(
    help="Official checkpoints: fetch them into the cache ($LMFN_BENCH_WEIGHTS).", no_args_is_help=True
)


@app.command("fetch")
@friendly_errors
def fetch(
    models: Annotated[
        list[str] | None, typer.Argument(help="Zoo names or patterns; default: every official file.")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar=weights.URL_ENV, help="Mirror to fetch <Model>/<file> from instead of the pinned URLs."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Download again even if the cached file's hash is right.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Download the official weights (pinned URL + sha256) into the cache `eval`/`pipeline`/`ablate` search first."""
    for f in tasks.fetch_weights(models, base_url=base_url, force=force):
        if json_out:
            json_line({"file": f.file, "path": str(f.path), "status": f.status})
        else:
            out.print(f"{f.status:>8}  {f.path}", highlight=False, markup=False, soft_wrap=True)


@app.command("list")
@friendly_errors
def list_sources(json_out: JsonOpt = False) -> None:
    """Every official file with its pinned source, sha256 and whether the cache has it."""
    for file, src in weights.SOURCES.items():
        row = {"file": file, "url": src.url(file), "sha256": src.sha256,
               "cached": weights.cached_checkpoint(file) is not None}  # fmt: skip
        if json_out:
            json_line(row)
        else:
            out.print(f"{'cached ' if row['cached'] else 'missing'}  {file}  {row['url']}", highlight=False,
                      markup=False, soft_wrap=True)  # fmt: skip
