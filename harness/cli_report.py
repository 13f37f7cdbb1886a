"""``lmfn-bench report``: Tables 1-3 and Fig. 1 from the results store as LaTeX, HTML and Markdown.

Registered by ``harness.cli`` as ``app.command("report")(report_command)``. ``harness.cli`` is imported inside
the function, so this module can be imported from anywhere in ``harness.cli`` without a circular import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.store import DEFAULT_STORE
from harness.zoo import SCALES

FORMAT_CHOICES = ("latex", "html", "md", "all")


def _formats(values: list[str] | None) -> tuple[str, ...]:
    from reports.render import FORMATS

    chosen: list[str] = []
    for v in values or ["all"]:
        for f in v.lower().split(","):
            if f not in FORMAT_CHOICES:
                raise ValueError(f"unknown --format '{f}'; choose from {', '.join(FORMAT_CHOICES)}")
            chosen += FORMATS if f == "all" else [f]
    return tuple(f for f in FORMATS if f in chosen)


def _report(store: Path, formats: list[str] | None, out: Path, ablation_dataset: str, scale: int) -> None:
    from harness.cli import out as console
    from harness.data import canonical_dataset
    from reports.render import write_report
    from reports.tables import build_report

    fmts = _formats(formats)  # bad options fail before the store is read
    if scale not in SCALES:
        raise ValueError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    report = build_report(store, canonical_dataset(ablation_dataset), scale)
    for path in write_report(report, out, fmts):
        console.print(str(path), highlight=False, soft_wrap=True)


StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite results store to read.")]
FormatOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help="latex | html | md | all (repeatable or comma-separated); default all.",
    ),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder (LaTeX goes to OUT/latex).")]
SetOpt = Annotated[
    str,
    typer.Option(
        help="Set for Tables 1-2 and Fig. 1; if the store lacks it, the best available set is shown."
    ),
]
ScaleOpt = Annotated[int, typer.Option("--scale", "-s", help="Scale for Tables 1-2 and Fig. 1.")]


def report_command(
    store: StoreOpt = Path(DEFAULT_STORE),
    formats: FormatOpt = None,
    out: OutOpt = Path("report"),
    ablation_dataset: SetOpt = "Manga109",
    scale: ScaleOpt = 4,
) -> None:
    """Tables 1-3 and Fig. 1 (PSNR vs FLOPs) as LaTeX / HTML / Markdown from the results store."""
    from harness.cli import friendly_errors  # imported here: harness.cli imports this module

    friendly_errors(_report)(store, formats, out, ablation_dataset, scale)
