"""The project's published.csv carries every fact of the reference CSV unchanged, plus a protocol column."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from baselines.published import CSV_PATH, published, published_metric, published_rows


def test_every_row_has_source_and_known_protocol() -> None:
    rows = published_rows()
    assert len(rows) > 30
    for r in rows:
        assert r["source"].strip(), r
        assert r["protocol"] in ("basicsr", "matlab"), r


def test_facts_equal_the_reference_csv(need_shared) -> None:
    ref_path: Path = need_shared("reference/published.csv")
    with open(ref_path, newline="") as f:
        ref = list(csv.DictReader(f))
    with open(CSV_PATH, newline="") as f:
        ours = list(csv.DictReader(f))
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert {k: a[k] for k in b} == b


def test_lookup() -> None:
    assert published_metric("LKDN", 4, "Set5") == (32.39, 0.8979)
    assert published("lkdn", 4)["flops_g"] == pytest.approx(18.3)
    assert published("LKDN", 2) is None
    assert published("bicubic", 4)["protocol"] == "matlab"
