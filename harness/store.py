"""The results store: one SQLite file (WAL mode), one atomic transaction per result, safe for several writers.

Each row is one measurement with its provenance. ``kind`` is ``eval`` (PSNR/SSIM), ``profile`` (params, FLOPs,
latency in ``metrics``), ``train`` (validation during training) or ``lam`` (LAM diffusion index: metrics
di/gini/map_png, the settings in extra and device_key). ``source`` says what a number is: ``measured``
(official or user checkpoint), ``trained`` (weights trained by this tool; ``extra.profile`` names the recipe).
The key (kind, model, scale, dataset, protocol, source, checkpoint_hash, device_key) identifies "the same
measurement" so ``eval --all`` can skip what is there; a forced re-measurement replaces it. Rows are made by
:mod:`harness.results`. Stores written before ``source`` joined the key (schema 1) are migrated once, in place,
when opened for writing; read-only opens (reports, merge sources) never write.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import provenance
from harness.errors import NonFiniteResultError, StoreError
from harness.settings import DEFAULT_STORE

__all__ = ["DEFAULT_STORE", "KEY_COLS", "Store"]

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
"""
KEY_COLS = ("kind", "model", "scale", "dataset", "protocol", "source", "checkpoint_hash", "device_key")
SCHEMA_VERSION = 2  # 1: key without source; 2: source in the key
_INDEX = f"CREATE UNIQUE INDEX IF NOT EXISTS results_key_v2 ON results({', '.join(KEY_COLS)})"
_JSON_COLS = ("metrics", "versions", "extra")


def _nonfinite(value: object, path: str) -> str | None:
    """The path of the first NaN/inf number inside ``value`` (dicts and lists walked), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _nonfinite(v, f"{path}.{k}")
        if found:
            return found
    return None


def _check_finite(row: dict) -> None:
    """Only finite numbers are stored: a NaN row would replace a good one and poison every mean."""
    for col in ("psnr", "ssim", "metrics", "extra"):
        bad = _nonfinite(row.get(col), col)
        if bad:
            raise NonFiniteResultError(
                f"not stored: {bad} of {row.get('model', '?')} x{row.get('scale', '?')} "
                f"{row.get('dataset', '')} is not a finite number"
            )


class Store:
    """Results store at ``path`` (created on first use); ``readonly`` opens an existing one without writing."""

    def __init__(self, path: str | Path = DEFAULT_STORE, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"results store {self.path} does not exist")
            with self._connect() as con:
                self._check(con)
            return
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as con:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables and "results" not in tables:  # someone else's database: never add a table to it
                    raise StoreError(f"{self.path} is another program's database, not a results store")
                con.executescript(_SCHEMA)
                self._check(con)  # a foreign `results` table is not ours to write into
                self._migrate(con)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a results store ({e})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:  # mode=ro: no journal switch, no schema write, works on read-only files
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            wal = self.path.with_name(self.path.name + "-wal")
            if not os.access(self.path.parent, os.W_OK) and not wal.exists():
                uri += "&immutable=1"  # WAL needs a -shm it cannot make here; no writer can be active either
            con = sqlite3.connect(uri, uri=True, timeout=60.0)
        else:
            con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            if not self.readonly:
                con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=60000")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    def _check(self, con: sqlite3.Connection) -> None:
        try:
            cols = {r[1] for r in con.execute("PRAGMA table_info(results)")}
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a results store ({e})") from None
        if not set(KEY_COLS) <= cols:
            raise StoreError(f"{self.path} is not an lmfn-bench results store (no results table with its key)")

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Schema 1 -> 2: the unique key gains ``source`` (a superset of the old key, so no row conflicts)."""
        if con.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        con.execute("BEGIN IMMEDIATE")
        con.execute("DROP INDEX IF EXISTS results_key")
        con.execute(_INDEX)
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")

    def add(self, row: dict, replace: bool = True) -> dict:
        """Write one result atomically (provenance filled in where absent); returns the row as written."""
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only")
        _check_finite(row)
        row = _prepared(row)
        with self._transaction() as con:
            _write(con, row, replace)
        for c in _JSON_COLS:
            row[c] = json.loads(row[c]) if c in row else {}
        return row

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

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
        return self.merge_all([other])[0]

    def merge_all(self, sources: list[str | Path]) -> list[int]:
        """Merge several stores in one transaction: every source is opened read-only and read (so a corrupt
        or foreign one fails before anything is written), then all rows go in, newest per key winning."""
        batches = [Store(s, readonly=True).rows() for s in sources]
        counts = []
        with self._transaction() as con:
            for rows in batches:
                counts.append(sum(_merge_row(con, r) for r in rows))
        return counts

    @staticmethod
    def check_writable(path: str | Path) -> None:
        """Before any measurement: a path that cannot take rows (a folder, a corrupt or foreign file, an
        unwritable file or folder) is a one-line StoreError, and nothing is created."""
        p = Path(path)
        if p.is_dir():
            raise StoreError(f"results store {p} is a folder, not a file")
        folder = p.parent if p.exists() else next(d for d in [p.parent, *p.parent.parents] if d.exists())
        if p.exists():
            Store(p, readonly=True)  # opens and checks it without writing
            if not os.access(p, os.W_OK):
                raise StoreError(f"results store {p} is not writable")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(f"cannot write the results store {p}: folder {folder} is not writable")


def _prepared(row: dict) -> dict:
    """A row as stored: provenance filled in where absent, JSON columns as text."""
    row = dict(row)
    row.setdefault("source", "measured")  # the column default, spelled out: it is part of the key
    row.setdefault("uid", uuid.uuid4().hex)
    row.setdefault("created_at", provenance.now())
    row.setdefault("code_rev", provenance.code_revision())
    row.setdefault("versions", provenance.versions())
    for c in _JSON_COLS:
        if not isinstance(row.get(c, "{}"), str):
            row[c] = json.dumps(row[c], sort_keys=True)
    return row


def _key_values(row: dict) -> list:
    return [row.get(k, "" if k != "scale" else None) for k in KEY_COLS]


_SAME_KEY = " AND ".join(f"{k} IS ?" for k in KEY_COLS)


def _write(con: sqlite3.Connection, row: dict, replace: bool) -> None:
    cols = list(row)
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    if replace:  # a re-measurement replaces the row with the same key
        con.execute(f"DELETE FROM results WHERE {_SAME_KEY}", _key_values(row))
    con.execute(f"{verb} INTO results ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols])  # fmt: skip


def _merge_row(con: sqlite3.Connection, row: dict) -> int:
    """1 when ``row`` went in (no row with its key, or only older ones), else 0."""
    _check_finite(row)
    mine = con.execute(f"SELECT MAX(created_at) FROM results WHERE {_SAME_KEY}", _key_values(row)).fetchone()[0]
    if mine is not None and mine >= row["created_at"]:
        return 0
    _write(con, _prepared(row), replace=True)
    return 1
