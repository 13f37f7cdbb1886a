"""Table 3's GPU runtime column (reports.runtime): which profile rows make a runtime cell, which GPU is shown,
and that a store merged from a GPU run and a CPU run keeps both."""

from __future__ import annotations

import math
from pathlib import Path

from report_fixtures import NEW, OLD, _eval

from harness.store import Store
from reports.inputs import load_report
from reports.render import render_markdown
from reports.runtime import RUNTIME

H200, A100 = "NVIDIA H200", "NVIDIA A100-SXM4-80GB"


def _latency_row(db: Store, model: str, ms: float, gpu: str | None, *, flops: float | None = None,
                 dtype: str = "fp32", cl: bool = False, lr: int = 180, at: str = NEW) -> None:  # fmt: skip
    """A profile row as measure.profile_model writes it: latency at LR ``lr`` rows (180 = the full protocol)."""
    metrics = {"params": 1000, "input": "hd720", "lr_h": 180, "lr_w": 320, "latency_ms_median": ms,
               "latency_lr_h": lr, "latency_lr_w": lr * 16 // 9, "dtype": dtype, "channels_last": cl,
               "compile": False, "device": "cuda" if gpu else "cpu", "device_name": gpu or "CPU Test"}  # fmt: skip
    if flops is not None:
        metrics["flops_paper"] = flops
    where = gpu or "CPU Test"
    key = "|".join(["hd720", where, dtype, "cl" if cl else "", ""])
    db.add({"kind": "profile", "model": model, "scale": 4, "dataset": "hd720", "metrics": metrics,
            "device_key": key, "device": where, "created_at": at})  # fmt: skip


def _table3(path: Path, published: Path):
    return load_report(path, "Set5", 4, published=published).tables[2]


def test_runtime_column_from_plain_fp32_cuda_rows_of_the_most_measured_gpu(tmp_path: Path, published: Path) -> None:
    db = Store(tmp_path / "r.db")
    for m, psnr in (("lkdn", 32.39), ("imdn", 32.21), ("vapsr", 32.4)):
        _eval(db, m, 4, "Set5", psnr, 0.89)
    _latency_row(db, "lkdn", 250.0, None, flops=18.3e9, at=OLD)  # CPU: never a runtime cell
    _latency_row(db, "lkdn", 4.25, H200, at=OLD)
    _latency_row(db, "lkdn", 3.75, H200)  # newer: wins
    _latency_row(db, "lkdn", 2.0, H200, dtype="fp16")  # not the plain fp32 deployment
    _latency_row(db, "lkdn", 3.1, H200, cl=True)  # channels_last: not shown
    _latency_row(db, "imdn", 5.5, H200, flops=40.9e9)
    _latency_row(db, "vapsr", 1.0, H200, lr=32)  # timed at a smaller input than the protocol's
    _latency_row(db, "imdn", 9.0, A100)  # the other GPU, one row: noted, not shown
    t3 = _table3(tmp_path / "r.db", published)
    vals = t3.values.droplevel("block")
    assert vals.loc["LKDN", ("", RUNTIME)] == 3.75 and vals.loc["IMDN", ("", RUNTIME)] == 5.5
    assert math.isnan(vals.loc["VapSR", ("", RUNTIME)])
    # FLOPs come from the rows that counted them, not from a newer latency-only row
    assert vals.loc["LKDN", ("", "FLOPs (G)")] == 18.3 and vals.loc["IMDN", ("", "FLOPs (G)")] == 40.9
    assert H200 in t3.caption and "CUDA events" in t3.caption and "fp32" in t3.caption
    assert any(A100 in n for n in t3.notes)
    fig = load_report(tmp_path / "r.db", "Set5", 4, published=published)
    pts = fig.figure.set_index("label")
    assert pts.loc["LKDN", "runtime_ms"] == 3.75 and H200 in fig.figure_caption
    md = render_markdown(load_report(tmp_path / "r.db", "Set5", 4, published=published), "fig1.png")
    assert RUNTIME in md and "3.75" in md


def test_no_gpu_rows_no_runtime_column(tmp_path: Path, published: Path) -> None:
    db = Store(tmp_path / "r.db")
    _eval(db, "lkdn", 4, "Set5", 32.39, 0.89)
    _latency_row(db, "lkdn", 250.0, None, flops=18.3e9)
    t3 = _table3(tmp_path / "r.db", published)
    assert ("", RUNTIME) not in t3.values.columns and "Runtime" not in t3.caption


def test_merged_gpu_and_cpu_stores_keep_both_profiles(tmp_path: Path, published: Path) -> None:
    cpu, gpu = Store(tmp_path / "cpu.db"), Store(tmp_path / "gpu.db")
    _eval(cpu, "lkdn", 4, "Set5", 32.39, 0.89)
    _latency_row(cpu, "lkdn", 250.0, None, flops=18.3e9)
    _latency_row(gpu, "lkdn", 3.75, H200, flops=18.3e9)
    cpu.merge_from(tmp_path / "gpu.db")
    profiles = [r for r in Store(tmp_path / "cpu.db", readonly=True).rows() if r["kind"] == "profile"]
    assert sorted(r["metrics"]["device"] for r in profiles) == ["cpu", "cuda"]
    assert _table3(tmp_path / "cpu.db", published).values.droplevel("block").loc["LKDN", ("", RUNTIME)] == 3.75
