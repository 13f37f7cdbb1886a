"""``lmfn-bench store``: manage results stores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import DEFAULT_STORE_PATH, friendly_errors, out
from harness.errors import MissingFileError
from harness.store import Store

app = typer.Typer(help="Manage results stores.", no_args_is_help=True)


@app.command("merge")
@friendly_errors
def merge(
    sources: Annotated[list[Path], typer.Argument(help="Stores to merge in (opened read-only).")],
    into: Annotated[Path, typer.Option("--into", help="Target store.")] = DEFAULT_STORE_PATH,
) -> None:
    """Merge results stores (e.g. from `eval --all --shard i/n` on several machines); newest wins per key."""
    for s in sources:
        if not s.is_file():
            raise MissingFileError(f"store {s} does not exist")
    Store.check_writable(into)
    counts = Store(into).merge_all(list(sources))  # every source checked first; one transaction
    for s, n in zip(sources, counts, strict=True):
        out.print(f"{s}: {n} rows merged into {into}", highlight=False, soft_wrap=True)
