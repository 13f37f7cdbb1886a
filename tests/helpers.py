"""Small helpers shared by the baseline tests (imported as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import csv
from pathlib import Path


def published_row(shared: Path, row: str, scale: int) -> dict[str, str]:
    """The raw row of ../shared/reference/published.csv for paper name ``row`` at ``scale`` (independent of the
    project's own copy, so the tests check against the reference file itself)."""
    with open(shared / "reference" / "published.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["model"] == row and int(r["scale"]) == scale:
                return r
    raise AssertionError(f"no published row {row} x{scale}")
