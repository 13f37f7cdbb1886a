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


# schema 1: what stores written before `source` joined the key look like
_SCHEMA_1 = """
CREATE TABLE results (
    uid TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, variant TEXT NOT NULL DEFAULT '',
    scale INTEGER NOT NULL, dataset TEXT NOT NULL DEFAULT '', protocol TEXT NOT NULL DEFAULT '', psnr REAL,
    ssim REAL, n_images INTEGER, metrics TEXT NOT NULL DEFAULT '{}', source TEXT NOT NULL DEFAULT 'measured',
    checkpoint TEXT NOT NULL DEFAULT '', checkpoint_hash TEXT NOT NULL DEFAULT '',
    device_key TEXT NOT NULL DEFAULT '', code_rev TEXT NOT NULL DEFAULT '', device TEXT NOT NULL DEFAULT '',
    versions TEXT NOT NULL DEFAULT '{}', extra TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX results_key ON results(kind, model, scale, dataset, protocol, checkpoint_hash, device_key);
INSERT INTO results (uid, kind, model, scale, dataset, protocol, psnr, source, checkpoint_hash, extra, created_at)
VALUES ('old1', 'eval', 'lka-msm-ifm@mr', 4, 'Set5', 'basicsr', 30.5, 'trained', 'abc', '{"profile": "short"}',
        '2026-01-01T00:00:00+00:00');
"""
KEY = {"kind": "eval", "model": "lka-msm-ifm@mr", "scale": 4, "dataset": "Set5", "protocol": "basicsr",
       "checkpoint_hash": "abc"}  # fmt: skip


def _schema_1_store(path: Path) -> Path:
    import sqlite3

    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_1)
    con.commit()
    con.close()
    return path


def test_source_is_in_the_key_so_a_measured_row_never_replaces_a_trained_one(tmp_path: Path) -> None:
    # was: re-evaluating a trained checkpoint replaced its row and lost its `trained` provenance
    db = Store(tmp_path / "r.db")
    db.add({**KEY, "psnr": 30.5, "source": "trained", "extra": {"profile": "short"}})
    db.add({**KEY, "psnr": 30.6})  # source measured
    got = {r["source"]: (r["psnr"], r["extra"]) for r in db.rows()}
    assert got == {"trained": (30.5, {"profile": "short"}), "measured": (30.6, {})}
    db.add({**KEY, "psnr": 30.7, "source": "trained", "extra": {"profile": "short"}})  # same key: replaces
    assert sorted(r["psnr"] for r in db.rows()) == [30.6, 30.7]


def test_a_schema_1_store_is_migrated_once_and_stays_readable_and_mergeable(tmp_path: Path) -> None:
    import sqlite3

    old = _schema_1_store(tmp_path / "old.db")
    before = old.read_bytes()
    # read-only opens (reports, merge sources) read it as it is and write nothing
    assert [r["uid"] for r in Store(old, readonly=True).rows()] == ["old1"]
    target = Store(tmp_path / "new.db")
    assert target.merge_from(old) == 1
    assert old.read_bytes() == before
    assert target.rows()[0]["extra"] == {"profile": "short"}
    # opened for writing: migrated in place, the old row kept
    db = Store(old)
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    indexes = {r[1] for r in con.execute("PRAGMA index_list(results)")}
    con.close()
    assert "results_key" not in indexes and "results_key_v2" in indexes
    db.add({**KEY, "psnr": 30.6})  # a measured row beside the trained one
    assert sorted((r["source"], r["psnr"]) for r in db.rows()) == [("measured", 30.6), ("trained", 30.5)]
    Store(old)  # a second open changes nothing
    assert len(Store(old).rows()) == 2


def test_read_only_open_refuses_writes_and_foreign_files(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from harness.errors import StoreError

    db = Store(tmp_path / "r.db")
    db.add({**KEY, "psnr": 1.0})
    ro = Store(tmp_path / "r.db", readonly=True)
    with pytest.raises(StoreError, match="read-only"):
        ro.add({**KEY, "psnr": 2.0})
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "absent.db", readonly=True)
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(StoreError, match="not an lmfn-bench results store"):
        Store(foreign, readonly=True)
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a results store"):
        Store(tmp_path / "junk.db", readonly=True)


def _bad_stores(tmp_path: Path) -> dict[str, Path]:
    import sqlite3

    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE accounts (id INTEGER)")
    con.commit()
    con.close()
    other = tmp_path / "other-schema.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE results (id INTEGER, value REAL)")
    con.commit()
    con.close()
    return {"is a folder": folder, "not a results store": corrupt, "results store (no results table": foreign,
            "not an lmfn-bench results store": other}  # fmt: skip


def _bytes(paths: list[Path]) -> list[bytes | None]:
    return [p.read_bytes() if p.is_file() else None for p in paths]


def test_a_bad_store_fails_in_one_line_before_any_measurement(tmp_path: Path, monkeypatch) -> None:
    # was: a traceback only after the measurement finished, so the work was lost
    from typer.testing import CliRunner

    import harness.tasks
    from harness.cli import app

    calls = []
    monkeypatch.setattr(harness.tasks, "evaluate_model", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(harness.tasks, "profile_model", lambda *a, **k: calls.append(a))
    for needle, store in _bad_stores(tmp_path).items():
        before = _bytes([store])
        for cmd in (["eval", "-m", "bicubic"], ["profile", "-m", "bicubic", "--no-latency"]):
            res = CliRunner().invoke(app, [*cmd, "--store", str(store)])
            assert res.exit_code == 2 and needle in res.output, (cmd, res.output)
            assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
            assert _bytes([store]) == before
    assert calls == []  # nothing was measured


def test_merge_checks_every_source_first_reads_them_read_only_and_is_one_transaction(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from harness.cli import app

    good = Store(tmp_path / "good.db")
    good.add({**KEY, "psnr": 30.0})
    target = tmp_path / "target.db"
    Store(target).add({**KEY, "model": "other", "psnr": 1.0})
    for needle, bad in _bad_stores(tmp_path).items():
        if bad.is_dir():
            continue
        before = _bytes([target, bad, tmp_path / "good.db"])
        # the corrupt source comes second: nothing of the first may be merged (was: a half-done merge)
        res = CliRunner().invoke(app, ["store", "merge", str(tmp_path / "good.db"), str(bad), "--into", str(target)])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
        assert _bytes([target, bad, tmp_path / "good.db"]) == before  # the foreign db gets no table either
        # and as the target
        res = CliRunner().invoke(app, ["store", "merge", str(tmp_path / "good.db"), "--into", str(bad)])
        assert res.exit_code == 2 and needle in res.output and _bytes([bad]) == before[1:2], res.output
    # a read-only source merges (it is opened with mode=ro)
    (tmp_path / "good.db").chmod(0o444)
    res = CliRunner().invoke(app, ["store", "merge", str(tmp_path / "good.db"), "--into", str(target)])
    assert res.exit_code == 0 and "1 rows merged" in res.output, res.output
    assert sorted(r["model"] for r in Store(target).rows()) == ["lka-msm-ifm@mr", "other"]
