"""``lmfn-bench report``: Tables 1-3 and Fig. 1 from the results store as LaTeX, HTML and Markdown.

Thin: parses the options, calls :func:`reports.inputs.load_report` and :func:`reports.inputs.save_report`,
prints the ``--compare`` differences and the files written. The ``reports`` package (pandas, jinja2,
matplotlib, scipy) is imported only when the command runs, so ``--help`` and the other commands start
without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli.common import DEFAULT_STORE_PATH, friendly_errors
from harness.cli.common import out as console
from harness.errors import UsageError
from harness.settings import ABLATION_SET, DEFAULT_SCALE, SCALES

if TYPE_CHECKING:
    from reports.schema import ReportTable

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
CompareOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--compare",
        metavar="A B",
        help="Paired PSNR difference A − B with its bootstrap interval on every set both were measured on "
        "(over seeds and images when both are runs of one ablation grid); repeatable.",
    ),
]
# typer has no repeatable two-value option: each --compare takes A, and its B lands in this hidden list
CompareSecondArg = Annotated[list[str] | None, typer.Argument(hidden=True, metavar="B")]
LevelOpt = Annotated[float, typer.Option("--ci-level", help="Confidence level of every bootstrap interval.")]
SeedOpt = Annotated[
    int, typer.Option("--bootstrap-seed", help="Seed of the bootstrap (fixed, so a report is reproducible).")
]


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


def parse_compare(first: list[str] | None, second: list[str] | None) -> list[tuple[str, str]]:
    """``--compare A B --compare C D`` -> [(A, B), (C, D)] (typer hands over [A, C] and [B, D])."""
    first, second = first or [], second or []
    if second and not first:
        raise UsageError(f"unexpected argument '{second[0]}' (did you mean --compare A B?)")
    if len(first) != len(second):
        raise UsageError("--compare takes two model names: --compare A B")
    return list(zip(first, second, strict=True))


def print_comparisons(table: ReportTable) -> None:
    """The Comparisons table (a ``ReportTable``) in the terminal, with its notes."""
    from rich.table import Table
    from rich.text import Text

    from reports.render import PLAIN, grid

    g = grid(table, PLAIN)
    shown = Table(title=g["caption"])
    for col in ("models", "set", *g["fields"]):
        shown.add_column(col, justify="left" if col in ("models", "set") else "right")
    for block in g["blocks"]:
        for r in block["rows"]:
            shown.add_row(*(Text(c) for c in (block["title"], r["label"], *r["cells"])))  # no rich markup
    console.print(shown)
    for note in g["notes"]:
        console.print(Text(f"- {note}"))


@friendly_errors
def command(
    store: StoreOpt = DEFAULT_STORE_PATH,
    formats: FormatOpt = None,
    out: OutOpt = Path("report"),
    ablation_dataset: SetOpt = ABLATION_SET,
    scale: ScaleOpt = DEFAULT_SCALE,
    compare: CompareOpt = None,
    compare_second: CompareSecondArg = None,
    ci_level: LevelOpt = 0.95,
    bootstrap_seed: SeedOpt = 0,
) -> None:
    """Tables 1-3, Fig. 1 (PSNR vs FLOPs) and, where the store has them, Figs. 5 (visual crops) and 6 (LAM
    maps) as LaTeX / HTML / Markdown from the results store."""
    fmts = parse_formats(formats)  # bad options fail before the store is read
    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    if not 0 < ci_level < 1:
        raise UsageError(f"--ci-level must be between 0 and 1 (e.g. 0.95), got {ci_level}")
    pairs = parse_compare(compare, compare_second)
    from reports.inputs import load_report, report_folder, save_report
    from reports.schema import StatsOptions

    stats = StatsOptions(level=ci_level, seed=bootstrap_seed)
    folder = report_folder(out)
    rep = load_report(store, ablation_dataset, scale, compare=pairs, stats=stats)
    paths = save_report(rep, folder, fmts)
    if rep.comparisons is not None:
        print_comparisons(rep.comparisons)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)
