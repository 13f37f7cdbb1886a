"""The README's main job end to end on the embedded Default set (tiny grid budget; bicubic + the grid)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.checkpoint import file_sha256
from harness.cli import app
from harness.store import Store

LMFN = "lka-msm-ifm@mr"  # the registered name of `lmfn`
# Tables 1-2's networks: the 7 cell patterns and LMFN's 4 IFF schemes (LMFN in both)
GRID = ("lka", "msm", "ifm@mr", "lka-msm", "lka-ifm@mr", "msm-ifm@mr", LMFN, "lka-msm-ifm@cascade",
        "lka-msm-ifm@parallel", "lka-msm-ifm@mr-cross")  # fmt: skip


def _md_row(text: str, label: str) -> list[str]:
    line = next((ln for ln in text.splitlines() if ln.startswith(f"| {label} |")), "")
    return [c.strip() for c in line.strip().strip("|").split("|")][1:] if line else []


def test_pipeline_trains_evaluates_profiles_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LMFN_BENCH_DATA", raising=False)
    store, out = tmp_path / "r.db", tmp_path / "out"
    args = ["pipeline", "--grid-iters", "2", "--out", str(out), "--store", str(store), "-m", "bicubic"]
    first = res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    db = Store(store)
    trained = db.rows(kind="eval", model=LMFN, source="trained")
    assert [r["dataset"] for r in trained] == ["Default"] and trained[0]["extra"]["profile"] == "ablation-cpu"
    bicubic = {r["protocol"]: r["psnr"] for r in db.rows(kind="eval", model="bicubic")}
    assert set(bicubic) == {"basicsr", "matlab"} and bicubic["basicsr"] > 20
    assert {r["model"] for r in db.rows(kind="profile")} == {"bicubic", *GRID}
    # Tables 1-2 filled by the grid (one seed), every network with PSNR and FLOPs
    assert {r["model"] for r in db.rows(kind="eval", source="trained")} == set(GRID)
    for f in ("report.html", "report.md", "fig1.png", "latex/main.tex", "latex/table3.tex"):
        assert (out / "report" / f).is_file(), f
    md = (out / "report" / "report.md").read_text()
    assert "Default PSNR" in md and "LKA-MSM-IFM" in md
    for label in ("LKA", "MSM", "LKA-MSM", "Parallel"):
        cells = _md_row(md, label)
        assert cells and all(c not in ("", "–") for c in cells[:4]), (label, cells)
    # a second run skips what the store has: no retraining
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "already trained" in res.stderr
    assert len(Store(store).rows(kind="eval", model=LMFN, source="trained")) == 1
    assert len(Store(store).rows(kind="eval", source="trained")) == len(GRID)
    _trained_lmfn_is_evaluated_like_any_checkpoint(first.stderr, out, store)


def _trained_lmfn_is_evaluated_like_any_checkpoint(stderr: str, out: Path, store: Path) -> None:
    # was: "no checkpoint found in None" for the LMFN just trained, whose rows came from another path
    assert "no checkpoint found" not in stderr and "None" not in stderr
    (ckpt,) = (out / "ablation").glob(f"*/{LMFN}/seed0/net_g_latest.pth")
    (row,) = Store(store).rows(kind="eval", model=LMFN, source="trained")
    assert row["checkpoint_hash"] == file_sha256(ckpt) and row["checkpoint"] == str(ckpt.resolve())
    assert row["metrics"]["forward_seconds"] > 0 and row["metrics"]["per_image"]
    assert row["extra"]["profile"] == "ablation-cpu" and row["extra"]["iteration"] == 2
    # was: re-evaluating a trained checkpoint replaced its row with a `measured` one, losing its provenance
    res = CliRunner().invoke(app, ["eval", "-m", "lmfn", "--checkpoint", str(ckpt), "--store", str(store)])
    assert res.exit_code == 0, res.output
    again = Store(store).rows(kind="eval", model=LMFN)
    assert [(r["source"], r["extra"]["profile"]) for r in again] == [("trained", "ablation-cpu")]
    assert again[0]["uid"] != row["uid"]  # re-measured, provenance kept
    assert again[0]["psnr"] == row["psnr"]  # the run's own final evaluation and `eval --checkpoint` agree
