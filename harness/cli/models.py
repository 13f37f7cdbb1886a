"""``lmfn-bench models``: the zoo."""

from __future__ import annotations

from typing import Annotated

import typer

from harness import zoo
from harness.cli.common import JsonOpt, friendly_errors
from harness.cli.output import json_line, zoo_table
from harness.measure import count_params


@friendly_errors
def command(
    details: Annotated[
        bool, typer.Option("--details", help="Also build each model and count its params at x2/x3/x4.")
    ] = False,
    pattern: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only these names or patterns ('lka*').")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the model zoo (LMFN spellings such as 'lmfn' or 'lka-msm-ifm' are aliases of one entry)."""
    rows = []
    for name in zoo.select(pattern) if pattern else list(zoo.registry()):
        spec = zoo.get_spec(name)
        row = {
            "model": spec.name,
            "family": spec.family,
            "scales": list(spec.scales),
            "paper": spec.paper,
            "checkpoints": {str(k): v for k, v in spec.checkpoints.items()},
        }
        if details:
            row["params"] = {str(s): count_params(zoo.build(name, s)) for s in spec.scales}
        rows.append(row)
    if json_out:
        for r in rows:
            json_line(r)
    else:
        zoo_table(rows, details)
