"""The results store: one SQLite file (WAL mode), one atomic transaction per result, safe for several writers.

Each row is one measurement with its provenance. ``kind`` is ``eval`` (PSNR/SSIM), ``profile`` (params, FLOPs,
latency in ``metrics``) or ``train`` (validation during training). ``source`` says what a number is: ``measured``
(official or user checkpoint), ``trained`` (weights trained by this tool; ``extra.profile`` names the recipe).
The key (kind, model, scale, dataset, protocol, checkpoint_hash, device_key) identifies "the same measurement" so
``eval --all`` can skip what is there; a forced re-measurement replaces it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import provenance

DEFAULT_STORE = "lmfn-results.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    uid TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',
    scale INTEGER NOT NULL,
    dataset TEXT NOT NULL DEFAULT '',
    protocol TEXT NOT NULL DEFAULT '',
    psnr REAL,
    ssim REAL,
    n_images INTEGER,
    metrics TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT 'measured',
    checkpoint TEXT NOT NULL DEFAULT '',
    checkpoint_hash TEXT NOT NULL DEFAULT '',
    device_key TEXT NOT NULL DEFAULT '',
    code_rev TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    versions TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS results_key
    ON results(kind, model, scale, dataset, protocol, checkpoint_hash, device_key);
"""

_JSON_COLS = ("metrics", "versions", "extra")
KEY_COLS = ("kind", "model", "scale", "dataset", "protocol", "checkpoint_hash", "device_key")


class Store:
    """Results store at ``path`` (created on first use)."""

    def __init__(self, path: str | Path = DEFAULT_STORE) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=60000")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    def add(self, row: dict, replace: bool = True) -> dict:
        """Write one result atomically (provenance filled in where absent); returns the row as written."""
        row = dict(row)
        row.setdefault("uid", uuid.uuid4().hex)
        row.setdefault("created_at", provenance.now())
        row.setdefault("code_rev", provenance.code_revision())
        row.setdefault("versions", provenance.versions())
        for c in _JSON_COLS:
            if not isinstance(row.get(c, "{}"), str):
                row[c] = json.dumps(row[c], sort_keys=True)
        cols = list(row)
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        sql = f"{verb} INTO results ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                if replace:  # a re-measurement replaces the row with the same key
                    con.execute(
                        "DELETE FROM results WHERE " + " AND ".join(f"{k} IS ?" for k in KEY_COLS),
                        [row.get(k, "" if k != "scale" else None) for k in KEY_COLS],
                    )
                con.execute(sql, [row[c] for c in cols])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        for c in _JSON_COLS:
            row[c] = json.loads(row[c]) if c in row else {}
        return row

    def has(self, **key) -> bool:
        where = " AND ".join(f"{k} = ?" for k in key)
        with self._connect() as con:
            return (
                con.execute(f"SELECT 1 FROM results WHERE {where} LIMIT 1", list(key.values())).fetchone()
                is not None
            )

    def rows(self, **where) -> list[dict]:
        sql = "SELECT * FROM results"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        sql += " ORDER BY created_at, uid"
        with self._connect() as con:
            out = [dict(r) for r in con.execute(sql, list(where.values()))]
        for r in out:
            for c in _JSON_COLS:
                r[c] = json.loads(r[c] or "{}")
        return out

    def merge_from(self, other: str | Path) -> int:
        """Copy every row of another store in (newest wins per key); returns how many rows were written."""
        src = Store(other)
        n = 0
        for r in src.rows():
            mine = self.rows(**{k: r[k] for k in KEY_COLS})
            if mine and mine[-1]["created_at"] >= r["created_at"]:
                continue
            self.add(r, replace=True)
            n += 1
        return n
