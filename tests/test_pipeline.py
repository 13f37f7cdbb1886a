"""The README's main job end to end on the embedded Default set (tiny budget; a handful of models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store


def test_pipeline_trains_evaluates_profiles_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LMFN_BENCH_DATA", raising=False)
    store, out = tmp_path / "r.db", tmp_path / "out"
    args = ["pipeline", "--train-minutes", "0.05", "--out", str(out), "--store", str(store), "-m", "bicubic"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    db = Store(store)
    trained = db.rows(kind="eval", model="lmfn", source="trained")
    assert [r["dataset"] for r in trained] == ["Default"] and trained[0]["extra"]["profile"] == "short"
    bicubic = {r["protocol"]: r["psnr"] for r in db.rows(kind="eval", model="bicubic")}
    assert set(bicubic) == {"basicsr", "matlab"} and bicubic["basicsr"] > 20
    assert {r["model"] for r in db.rows(kind="profile")} == {"bicubic", "lmfn"}
    for f in ("report.html", "report.md", "fig1.png", "latex/main.tex", "latex/table3.tex"):
        assert (out / "report" / f).is_file(), f
    md = (out / "report" / "report.md").read_text()
    assert "Default PSNR" in md and "LKA-MSM-IFM" in md
    # a second run skips what the store has: no retraining
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "already trained" in res.stderr
    assert len(Store(store).rows(kind="eval", model="lmfn", source="trained")) == 1
