"""Results store: atomic rows with provenance; concurrent writers lose nothing; merge."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from harness.store import Store


def _writer(path: str, tag: int, n: int) -> None:
    db = Store(path)
    for i in range(n):
        db.add(
            {
                "kind": "eval",
                "model": f"m{tag}",
                "scale": 4,
                "dataset": f"d{i}",
                "protocol": "basicsr",
                "psnr": float(i),
                "ssim": 0.5,
                "n_images": 1,
            }
        )


def test_two_processes_writing_at_once_lose_no_row(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    Store(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, t, 60)) for t in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = Store(path).rows()
    assert len(rows) == 120
    assert {(r["model"], r["dataset"]) for r in rows} == {
        (f"m{t}", f"d{i}") for t in range(2) for i in range(60)
    }


def test_same_key_replaces_and_provenance_is_filled(tmp_path: Path) -> None:
    db = Store(tmp_path / "r.db")
    key = {"kind": "eval", "model": "x", "scale": 2, "dataset": "Set5", "protocol": "basicsr"}
    db.add({**key, "psnr": 1.0})
    db.add({**key, "psnr": 2.0})
    rows = db.rows()
    assert [r["psnr"] for r in rows] == [2.0]
    assert rows[0]["created_at"] and rows[0]["code_rev"] and rows[0]["versions"]["torch"]
    assert db.has(**key) and not db.has(**{**key, "scale": 3})


def test_merge_keeps_newest(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    key = {"kind": "eval", "model": "x", "scale": 2, "dataset": "Set5", "protocol": "basicsr"}
    a.add({**key, "psnr": 1.0, "created_at": "2026-01-01T00:00:00+00:00"})
    b.add({**key, "psnr": 2.0, "created_at": "2026-02-01T00:00:00+00:00"})
    b.add({**key, "dataset": "Set14", "psnr": 3.0})
    assert a.merge_from(tmp_path / "b.db") == 2
    got = {r["dataset"]: r["psnr"] for r in a.rows()}
    assert got == {"Set5": 2.0, "Set14": 3.0}
    assert a.merge_from(tmp_path / "b.db") == 0  # idempotent
