"""The ``lmfn-bench`` app: every command registered from its own module."""

from __future__ import annotations

import typer

from harness.cli import ablate, lam, models, pipeline, profile, report, store, train, visuals
from harness.cli import eval as eval_cmd
from harness.cli import inspect as inspect_cmd
from harness.cli import weights as weights_cmd

app = typer.Typer(
    help="Benchmark and ablation harness for efficient single-image super-resolution, built around LMFN.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("models")(models.command)
app.command("eval")(eval_cmd.command)
app.command("profile")(profile.command)
app.command("train")(train.command)
app.command("ablate")(ablate.command)
app.command("report")(report.command)
app.command("pipeline")(pipeline.command)
app.command("lam")(lam.command)
app.command("visuals")(visuals.command)
app.add_typer(store.app, name="store")
app.command("inspect")(inspect_cmd.command)
app.add_typer(weights_cmd.app, name="weights")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
