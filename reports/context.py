"""What the table functions share: the newest row per cell, provenance ids, cells with their marks, the
legend, and a builder that turns rows of cells into a :class:`~reports.schema.ReportTable` with ranks.

Row selection: newest row per (key, scale, dataset), preferring the protocol the model's paper used
(``ModelInfo.protocol``; the default protocol for a key the catalogue lacks) so a measured number lines up
with the published one; a number under any other protocol than the default carries a protocol mark.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports.schema import DIGITS, FLOPS, PARAMS, PSNR, RANKED, SSIM, ModelInfo, ReportInputs, ReportTable

TRAINED = "†"
PROTOCOL_MARKS = {"matlab": "§"}  # any other non-default protocol gets "¶"
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
    """One profile row per (key, scale): the newest whose FLOPs are for the 1280x720 output."""
    profiles = [r for r in inputs.rows if r["kind"] == "profile"]
    df = _frame([r for r in profiles if r["metrics"].get("input", "hd720") == "hd720"])
    df = df.sort_values(["created_at", "uid"])
    return df.groupby(["key", "scale"]).tail(1).set_index(["key", "scale"])


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
            data = [[r[2].get(c, (math.nan, "", None))[i] for c in self.columns] for r in self.rows]
            return pd.DataFrame(data, index=idx, columns=cols, dtype=object if i else float)

        values, marks, sources = part(0), part(1), part(2)
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

    def __init__(self, inputs: ReportInputs) -> None:
        self.inputs = inputs
        self.evals = newest_evals(inputs)
        self.profiles = newest_profiles(inputs)
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

    def metric_cells(self, key: str, scale: int, dataset: str, group: str, label: str) -> dict:
        try:
            r = self.evals.loc[(key, scale, dataset)]
        except KeyError:
            return {}
        row = r["row"]
        mark = self._protocol_mark(r["protocol"])
        if mark:
            self.protocols.add(r["protocol"])
        if r["source"] == "trained":
            extra = row.get("extra") or {}
            self.trained[label] = f"profile {extra.get('profile', '?')}, {extra.get('iters', '?')} iters"
            mark = TRAINED + mark
        src = self.prov.add(row)
        return {(group, PSNR): (r["psnr"], mark, src), (group, SSIM): (r["ssim"], mark, src)}

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
