"""The worker process of the local launcher, and one run under torchrun (internal: ``ablate`` starts these).

``python -m harness.ablation.worker loop --grid-dir D --run VARIANT:SEED ... [--start I]``: go once round the
run list from position I, running every run that is not done and whose lock it can take; one JSON line per
event on stdout (``start`` / ``finish``), the trainer's messages in each run's ``train.out``.

``python -m harness.ablation.worker one --grid-dir D --variant V --seed S``: what every torchrun process runs
(the job that started torchrun holds the run's lock).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from harness.ablation.grid import load_grid
from harness.ablation.runs import train_and_mark, work


def _parse_run(text: str) -> tuple[str, int]:
    variant, _, seed = text.rpartition(":")
    return variant, int(seed)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.ablation.worker")
    p.add_argument("mode", choices=("loop", "one"))
    p.add_argument("--grid-dir", required=True)
    p.add_argument("--run", action="append", default=[], help="VARIANT:SEED (loop)")
    p.add_argument("--variant")
    p.add_argument("--seed", type=int)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--device")
    p.add_argument("--name", default="")
    p.add_argument("--since", type=float, help="skip runs that failed after this time (seconds since epoch)")
    a = p.parse_args(argv)
    spec = load_grid(a.grid_dir, device=a.device)
    if a.mode == "one":
        outcome, _ = train_and_mark(spec, spec.run(a.variant, a.seed), a.threads, a.device)
        return 0 if outcome in ("done", "interrupted") else 1
    runs = [spec.run(*_parse_run(r)) for r in a.run]

    def emit(event: dict) -> None:
        print(json.dumps(event), flush=True)

    work(spec, runs, emit, start=a.start, threads=a.threads, device=a.device, name=a.name, since=a.since)
    return 0


if __name__ == "__main__":  # pragma: no cover - started by the launcher
    sys.exit(main())
