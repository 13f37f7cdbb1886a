"""What the table functions share: the newest row per cell, provenance ids, cells with their marks, the
legend, and a builder that turns rows of cells into a :class:`~reports.schema.ReportTable` with ranks.

Row selection: newest row per (key, scale, dataset), preferring the protocol the model's paper used
(``ModelInfo.protocol``; the default protocol for a key the catalogue lacks) so a measured number lines up
with the published one; a number under any other protocol than the default carries a protocol mark.
Ablation grids (Tables 1-2): trained eval rows sharing a non-empty ``extra.grid``, newest row per (key, seed);
their per-image PSNR values are what the paired intervals of :mod:`reports.stats` resample.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports.runtime import RUNTIME, gpu_runtimes
from reports.schema import (
    DIGITS,
    FLOPS,
    PARAMS,
    PSNR,
    RANKED,
    SSIM,
    ModelInfo,
    ReportInputs,
    ReportTable,
    StatsOptions,
)

TRAINED = "†"
PROTOCOL_MARKS = {"matlab": "§"}  # any other non-default protocol gets "¶"
_EMPTY = (math.nan, "", None, math.nan, None)  # a cell's parts: value, marks, source, std, (lo, hi)
_COLS = ["uid", "model", "key", "scale", "dataset", "protocol", "psnr", "ssim", "source", "created_at"]


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*_COLS, "row"])
    df["row"] = rows  # the whole row travels along, for provenance and metrics
    return df


def newest_evals(inputs: ReportInputs) -> pd.DataFrame:
    """One eval row per (key, scale, dataset): the model's preferred protocol first, then the newest."""
    df = _frame([r for r in inputs.rows if r["kind"] == "eval"])
    info = inputs.catalogue
    preferred = [info[k].protocol if k in info else inputs.default_protocol for k in df["key"]]
    df["pref"] = [p == q for p, q in zip(df["protocol"], preferred, strict=True)]
    df = df.sort_values(["pref", "created_at", "uid"])
    return df.groupby(["key", "scale", "dataset"]).tail(1).set_index(["key", "scale", "dataset"])


def newest_profiles(inputs: ReportInputs) -> pd.DataFrame:
    """One profile row per (key, scale): the newest whose FLOPs are for the 1280x720 output (a row that
    counted FLOPs wins over a newer latency-only one, e.g. the GPU check's fp16 run)."""
    profiles = [r for r in inputs.rows if r["kind"] == "profile"]
    df = _frame([r for r in profiles if r["metrics"].get("input", "hd720") == "hd720"])
    df["counted"] = [r["metrics"].get("flops_paper") is not None for r in df["row"]]
    df = df.sort_values(["counted", "created_at", "uid"])
    return df.groupby(["key", "scale"]).tail(1).set_index(["key", "scale"])


def per_image(row: dict) -> dict[str, float] | None:
    """{image: PSNR} kept in an eval row's metrics, or None (rows from before per-image values were kept)."""
    items = (row.get("metrics") or {}).get("per_image") or []
    values = {str(i["image"]): float(i["psnr"]) for i in items if i.get("psnr") is not None}
    return values or None


def _distinct(values: Iterable) -> str:
    """The distinct values of one recipe field over a grid's runs, as text ("?" when none recorded)."""
    present = (v for v in values if v not in (None, "", []))
    text = ("+".join(map(str, v)) if isinstance(v, list) else str(v) for v in present)
    return ", ".join(dict.fromkeys(text)) or "?"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


@dataclass
class Grid:
    """One ablation grid's runs at one (scale, set): key -> seed -> the newest eval row of that run."""

    name: str
    runs: dict[str, dict[Hashable, dict]]

    def per_image(self, key: str) -> dict[Hashable, dict[str, float]] | None:
        """seed -> {image: PSNR} of ``key``'s runs; None without runs or if a run kept no per-image values."""
        by_seed = {s: per_image(r) for s, r in self.runs.get(key, {}).items()}
        return by_seed if by_seed and all(v is not None for v in by_seed.values()) else None

    def rows(self) -> list[dict]:
        return [r for by_seed in self.runs.values() for r in by_seed.values()]

    def recipe(self, name: str) -> str:
        """One ``extra`` field over the grid's runs (e.g. its profile), as text."""
        return _distinct((r.get("extra") or {}).get(name) for r in self.rows())

    def seeds(self) -> str:
        """How many seeds each variant has: "2 seeds", "1 seed", or "1–2 seeds" when runs are missing."""
        counts = sorted({len(by_seed) for by_seed in self.runs.values()})
        return "–".join(map(str, counts)) + (" seed" if counts == [1] else " seeds")

    def budget(self) -> str:
        """What the runs were trained with: seeds, profile, iterations, batch, data, wall time, device."""
        seeds = sorted({s for by_seed in self.runs.values() for s in by_seed})
        extras = [r.get("extra") or {} for r in self.rows()]
        secs = [float(e["train_seconds"]) for e in extras if e.get("train_seconds") is not None]
        wall = _duration(sum(secs) / len(secs)) if secs else "?"
        patch = self.recipe("patch_size")
        return (
            f"grid {self.name}: {self.seeds()} per variant (seeds {', '.join(map(str, seeds))}); "
            f"profile {self.recipe('profile')}, {self.recipe('iters')} iterations, batch "
            f"{self.recipe('batch_size')} of {patch}×{patch} LR patches, training data "
            f"{self.recipe('train_data')}; mean training wall time {wall} per run; device "
            f"{_distinct(r.get('device') for r in self.rows())}"
        )


def grids(inputs: ReportInputs, keys: Iterable[str], scale: int, dataset: str) -> list[Grid]:
    """The ablation grids with trained eval rows of ``keys`` at (scale, dataset), newest first.

    A grid is the rows sharing a non-empty ``extra.grid``; it keeps the protocol of its newest row and, per
    (key, seed), the newest row (a rerun replaces its older row)."""
    keys = set(keys)
    rows = sorted(
        (
            r
            for r in inputs.rows
            if r["kind"] == "eval" and r.get("source") == "trained" and r["key"] in keys
            and r["scale"] == scale and r["dataset"] == dataset and (r.get("extra") or {}).get("grid")
        ),
        key=lambda r: (r["created_at"], r["uid"]),
    )  # fmt: skip
    by_grid: dict[str, list[dict]] = {}
    for r in rows:
        by_grid.setdefault(r["extra"]["grid"], []).append(r)
    out = []
    newest_first = sorted(by_grid.items(), key=lambda g: (g[1][-1]["created_at"], g[1][-1]["uid"]))[::-1]
    for name, rs in newest_first:
        runs: dict[str, dict[Hashable, dict]] = {}
        for r in rs:  # oldest first: the newest row of a (key, seed) is written last
            if r["protocol"] == rs[-1]["protocol"]:
                runs.setdefault(r["key"], {})[r["extra"].get("seed", 0)] = r
        out.append(Grid(name, runs))
    return out


def _num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


class Provenance:
    """Every store row (or published row) a number came from, numbered in order of first use."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._rows: list[dict] = []

    def add(self, row: dict) -> int:
        if row["uid"] not in self._ids:
            extra = row.get("extra") or {}
            trained = row.get("source") == "trained"
            self._ids[row["uid"]] = len(self._rows) + 1
            self._rows.append(
                {
                    "id": len(self._rows) + 1,
                    "kind": row["kind"],
                    "model": row["model"],
                    "scale": row["scale"],
                    "dataset": row.get("dataset") or "",
                    "protocol": row.get("protocol") or "",
                    "source": row.get("source", "measured")
                    + (f" ({extra.get('profile', '?')}, {extra.get('iters', '?')} iters)" if trained else ""),
                    "checkpoint": Path(row.get("checkpoint") or "").name,
                    "checkpoint_hash": (row.get("checkpoint_hash") or "")[:12],
                    "device": row.get("device") or "",
                    "versions": ", ".join(f"{k} {v}" for k, v in sorted((row.get("versions") or {}).items())),
                    "code_rev": row.get("code_rev") or "",
                    "created_at": row.get("created_at") or "",
                }
            )
        return self._ids[row["uid"]]

    def add_published(self, name: str, scale: int, source: str) -> int:
        return self.add(
            {
                "uid": f"published:{name}:{scale}",
                "kind": "published",
                "model": name,
                "scale": scale,
                "source": f"published: {source}" if source else "published",
                "checkpoint": "",
            }
        )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self._rows)


@dataclass
class Builder:
    key: str
    caption: str
    columns: list[tuple[str, str]]
    row_header: str = "Model"
    rows: list[tuple[tuple, str, dict]] = field(default_factory=list)  # (index, kind, {col: (v, mark, src)})
    notes: list[str] = field(default_factory=list)

    def add(self, index: tuple, kind: str, cells: dict) -> None:
        self.rows.append((index, kind, cells))

    def build(self) -> ReportTable:
        idx = pd.MultiIndex.from_tuples([r[0] for r in self.rows], names=["block", "row"])
        cols = pd.MultiIndex.from_tuples(self.columns, names=["group", "field"])

        def part(i: int) -> pd.DataFrame:
            # a cell is (value, marks, source[, std[, (lo, hi)]]): missing parts take _EMPTY's
            cells = [[r[2].get(c, _EMPTY) for c in self.columns] for r in self.rows]
            data = [[(c + _EMPTY[len(c) :])[i] for c in row] for row in cells]
            return pd.DataFrame(data, index=idx, columns=cols, dtype=float if i in (0, 3) else object)

        values, marks, sources, std, ci = (part(i) for i in range(len(_EMPTY)))
        kinds = pd.Series([r[1] for r in self.rows], index=idx, name="kind")
        return ReportTable(
            self.key,
            self.caption,
            values,
            _ranks(values, kinds),
            marks,
            sources,
            kinds,
            self.notes,
            self.row_header,
            std,
            ci,
        )


def _ranks(values: pd.DataFrame, kinds: pd.Series) -> pd.DataFrame:
    """1 = best, 2 = second best (dense, on shown precision) per ranked column within each block."""
    rank = pd.DataFrame(0, index=values.index, columns=values.columns)
    for col in values.columns:
        if col[1] not in RANKED:
            continue
        for block in values.index.unique("block"):
            sel = (values.index.get_level_values("block") == block) & (kinds == "measured").to_numpy()
            shown = values.loc[sel, col].round(DIGITS[col[1]]).dropna()
            if len(shown) < 2:  # a lone number is not "best" of anything
                continue
            top = sorted(shown.unique(), reverse=True)[:2]
            for r, v in enumerate(top, start=1):
                rank.loc[shown.index[shown == v], col] = r
    return rank


class Context:
    """Deduplicated rows, published numbers and provenance, shared by the tables of one report."""

    def __init__(self, inputs: ReportInputs, stats: StatsOptions | None = None) -> None:
        self.inputs = inputs
        self.stats = stats or StatsOptions()  # level, resamples and seed of every interval in the report
        self.evals = newest_evals(inputs)
        self.profiles = newest_profiles(inputs)
        self.runtimes = gpu_runtimes(list(inputs.rows))
        self.prov = Provenance()
        self.trained: dict[str, str] = {}  # label -> training description, for the dagger footnote
        self.protocols: set[str] = set()

    def info(self, key: str) -> ModelInfo | None:
        return self.inputs.catalogue.get(key)

    def label(self, key: str) -> str:
        info = self.info(key)
        return info.label if info else key

    def _protocol_mark(self, protocol: str) -> str:
        return "" if protocol in ("", self.inputs.default_protocol) else PROTOCOL_MARKS.get(protocol, "¶")

    def _row_mark(self, row: dict, label: str) -> str:
        """The footnote marks of a number from ``row`` (protocol, trained), noted for the legend."""
        mark = self._protocol_mark(row.get("protocol") or "")
        if mark:
            self.protocols.add(row["protocol"])
        if row.get("source") == "trained":
            extra = row.get("extra") or {}
            self.trained[label] = f"profile {extra.get('profile', '?')}, {extra.get('iters', '?')} iters"
            mark = TRAINED + mark
        return mark

    def metric_cells(self, key: str, scale: int, dataset: str, group: str, label: str) -> dict:
        try:
            r = self.evals.loc[(key, scale, dataset)]
        except KeyError:
            return {}
        mark, src = self._row_mark(r["row"], label), self.prov.add(r["row"])
        return {(group, PSNR): (r["psnr"], mark, src), (group, SSIM): (r["ssim"], mark, src)}

    def grid_cells(self, grid: Grid, key: str, group: str, label: str) -> dict:
        """PSNR/SSIM of ``key`` in ``grid``: mean over its seeds, with the std (ddof=1) from two seeds on."""
        rows = list(grid.runs.get(key, {}).values())
        if not rows:
            return {}
        marks = "".join(dict.fromkeys(m for r in rows for m in self._row_mark(r, label)))
        src = tuple(self.prov.add(r) for r in rows)
        cells = {}
        for f in (PSNR, SSIM):
            v = np.array([r[f.lower()] for r in rows], float)
            std = float(v.std(ddof=1)) if len(v) > 1 else math.nan
            cells[(group, f)] = (float(v.mean()), marks, src, std)
        return cells

    def shown_per_image(self, a: str, b: str, scale: int, ds: str) -> tuple[dict, dict] | str:
        """Per-image PSNR of the rows shown for ``a`` and ``b`` at (scale, ds), or why they make no pair."""
        try:
            ra, rb = (self.evals.loc[(k, scale, ds)] for k in (a, b))
        except KeyError:
            return "not both measured"
        if ra["protocol"] != rb["protocol"]:
            return f"protocols differ ({ra['protocol']} vs {rb['protocol']})"
        va, vb = per_image(ra["row"]), per_image(rb["row"])
        if va is None or vb is None:
            return "no per-image values"
        return va, vb

    def cost_cells(self, key: str, scale: int) -> dict:
        try:
            row = self.profiles.loc[(key, scale)]["row"]
        except KeyError:
            return {}
        m, src = row["metrics"], self.prov.add(row)
        flops = m.get("flops_paper")
        return {
            ("", PARAMS): (m["params"] / 1e3 if m.get("params") is not None else math.nan, "", src),
            ("", FLOPS): (flops / 1e9 if flops is not None else math.nan, "", src),
        }

    def runtime_cells(self, key: str, scale: int) -> dict:
        """The GPU runtime cell of Table 3 (see :mod:`reports.runtime`); {} where none was measured."""
        row = self.runtimes.rows.get((key, scale))
        return {("", RUNTIME): (self.runtimes.ms[(key, scale)], "", self.prov.add(row))} if row else {}

    def published_cells(self, key: str, scale: int) -> dict:
        info = self.info(key)
        name = info.published_name if info else None
        pub = self.inputs.published.get((name.lower(), scale)) if name else None
        if pub is None:
            return {}
        src = self.prov.add_published(pub["model"], scale, pub.get("source", ""))
        cells = {
            ("", PARAMS): (_num(pub.get("params_k")), "", src),
            ("", FLOPS): (_num(pub.get("flops_g")), "", src),
        }
        for ds in self.inputs.sets:
            for f in (PSNR, SSIM):
                cells[(ds, f)] = (_num(pub.get(f"{ds.lower()}_{f.lower()}")), "", src)
        return {k: v for k, v in cells.items() if not math.isnan(v[0])}

    def legend(self, b: Builder) -> None:
        """Footnotes for the marks used so far (then reset, so each table explains its own marks)."""
        used = {m for r in b.rows for c in r[2].values() for m in c[1]}
        note = f"PSNR/SSIM on the Y channel under protocol {self.inputs.default_protocol} unless marked"
        marks = [f"{PROTOCOL_MARKS.get(p, '¶')} protocol {p}" for p in sorted(self.protocols)]
        b.notes.append(note + (f" ({'; '.join(marks)})." if marks else "."))
        if TRAINED in used:
            by_run: dict[str, list[str]] = {}
            for label, run in self.trained.items():
                by_run.setdefault(run, []).append(label)
            runs = "; ".join(f"{run}: {', '.join(labels)}" for run, labels in by_run.items())
            b.notes.append(f"{TRAINED} Weights trained by lmfn-bench, not official checkpoints ({runs}).")
        b.notes.append("A dash (–) marks a number not in the store.")
        self.reset_marks()

    def reset_marks(self) -> None:
        self.trained, self.protocols = {}, set()

    def pick_dataset(self, keys: Iterable[str], scale: int, wanted: str) -> tuple[str | None, str | None]:
        """The set to show for ``keys`` at ``scale``: ``wanted`` if a row has it, else the best available."""
        keys = set(keys)
        have = {d for (k, s, d) in self.evals.index if k in keys and s == scale}
        # the paper's sets run small to large: fall back to the largest, the embedded set last
        for ds in (wanted, *reversed(self.inputs.sets), self.inputs.default_set):
            if ds in have:
                note = (
                    None if ds == wanted else f"{wanted} ×{scale} is not in the store; showing {ds} ×{scale}."
                )
                return ds, note
        return None, f"No PSNR/SSIM at ×{scale} in the store for these models."
