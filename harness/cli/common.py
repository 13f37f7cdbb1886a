"""What every command shares: consoles, the error mapping, progress bars, shared options and parsers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import HarnessError, UsageError
from harness.settings import DATA_ENV, DEFAULT_STORE, SCALES

out = Console()
err = Console(stderr=True)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A :class:`HarnessError` becomes one line on stderr and its exit code; anything else is a bug and keeps
    its traceback. Ctrl-C exits 130 (results already written are kept)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; results written so far are kept")
            raise typer.Exit(130) from None

    return wrapper


def echo(message: str) -> None:
    """A status line on stderr, printed literally (paths and brackets are not markup)."""
    err.print(message, highlight=False, markup=False, soft_wrap=True)


def progress(*columns: Any) -> Progress:
    """A transient progress display on stderr (silent when stderr is not a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *columns,
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


class TaskBars:
    """Progress callbacks for :mod:`harness.tasks`: one bar for the matrix, one per running item."""

    def __init__(self, prog: Progress, total: int, label: str) -> None:
        self.prog = prog
        self.overall = prog.add_task(label, total=total)
        self.item: Any = None

    def start(self, description: str) -> None:
        self.item = self.prog.add_task(description, total=None)

    def tick(self, done: int, total: int, _name: str = "") -> None:
        if self.item is not None:
            self.prog.update(self.item, completed=done, total=total)

    def finish(self) -> None:
        if self.item is not None:
            self.prog.remove_task(self.item)
            self.item = None

    def advance(self) -> None:
        self.prog.advance(self.overall)


@contextmanager
def task_bars(total: int, label: str) -> Iterator[TaskBars]:
    with progress() as prog:
        yield TaskBars(prog, total, label)


DataRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-root",
        envvar=DATA_ENV,
        help="Folder with benchmark/<Set5|Set14|B100|Urban100|Manga109>/HR. Without it, the embedded "
        "Default set (scikit-image photos) is used.",
    ),
]
StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite results store.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object per result instead of a table.")]
WeightsDirOpt = Annotated[
    Path | None, typer.Option(help="Folder searched (recursively) for official checkpoints by file name.")
]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="Zoo name(s) or shell patterns ('lka*'), or module.path:factory."),
]
ForceOpt = Annotated[bool, typer.Option(help="Re-measure results the store already has.")]
ShardOpt = Annotated[
    str | None, typer.Option(help="Run only share i of n (i/n) of the matrix, to split it over machines.")
]
DEFAULT_STORE_PATH = Path(DEFAULT_STORE)


def check_scales(scales: list[int] | None, default: list[int]) -> list[int]:
    for s in scales or []:
        if s not in SCALES:
            raise UsageError(f"scale must be one of {', '.join(map(str, SCALES))}, got {s}")
    return list(scales) if scales else default


def parse_shard(shard: str | None) -> tuple[int, int]:
    if shard is None:
        return 0, 1
    try:
        i, n = (int(v) for v in shard.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/n (e.g. 0/4), got '{shard}'") from None
    if not 0 <= i < n:
        raise UsageError(f"--shard i/n needs 0 <= i < n, got '{shard}'")
    return i, n


def parse_size(size: str | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise UsageError(f"sizes look like HxW (e.g. 180x320), got '{size}'") from None
    if h < 1 or w < 1:
        raise UsageError(f"sizes must be positive, got '{size}'")
    return h, w
