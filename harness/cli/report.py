"""``lmfn-bench report``: Tables 1-3 and Fig. 1 from the results store as LaTeX, HTML and Markdown.

Thin: parses the options, calls :func:`reports.inputs.write_reports` and prints the files written. The
``reports`` package (pandas, jinja2, matplotlib) is imported only when the command runs, so ``--help`` and
the other commands start without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.common import DEFAULT_STORE_PATH, friendly_errors
from harness.cli.common import out as console
from harness.errors import UsageError
from harness.settings import ABLATION_SET, DEFAULT_SCALE, SCALES

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


def parse_formats(values: list[str] | None) -> tuple[str, ...]:
    """``-f md -f latex,html`` / ``all`` -> formats in write order, each once."""
    from reports.render import FORMATS

    choices = (*FORMATS, "all")
    chosen: list[str] = []
    for v in values or ["all"]:
        for f in v.lower().split(","):
            if f not in choices:
                raise UsageError(f"unknown --format '{f}'; choose from {', '.join(choices)}")
            chosen += FORMATS if f == "all" else [f]
    return tuple(f for f in FORMATS if f in chosen)


@friendly_errors
def command(
    store: StoreOpt = DEFAULT_STORE_PATH,
    formats: FormatOpt = None,
    out: OutOpt = Path("report"),
    ablation_dataset: SetOpt = ABLATION_SET,
    scale: ScaleOpt = DEFAULT_SCALE,
) -> None:
    """Tables 1-3 and Fig. 1 (PSNR vs FLOPs) as LaTeX / HTML / Markdown from the results store."""
    fmts = parse_formats(formats)  # bad options fail before the store is read
    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    from reports.inputs import write_reports

    for path in write_reports(store, fmts, out, ablation_dataset, scale):
        console.print(str(path), highlight=False, soft_wrap=True)
