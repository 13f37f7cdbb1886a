"""Results store -> the paper's Tables 1-3 (and the points of Fig. 1) as pandas frames.

A :class:`ReportTable` holds numbers, never formatted text: ``values`` (NaN = not in the store), ``rank``
(1 = best, 2 = second, per column within a block), ``marks`` (footnote symbols per cell), ``sources``
(provenance id per cell) and ``notes`` (legend lines, what is missing). :mod:`reports.render` formats them.

Choices made here:
- Row selection: newest row per (model, scale, dataset), preferring the protocol the model's paper used
  (``ModelSpec.protocol``, ``basicsr`` unless the zoo says otherwise) so a measured number lines up with the
  published one; a number under any protocol other than ``basicsr`` carries a protocol mark.
- Tables 1/2 read only LMFN-family rows (ablations trained by this tool); aliases (``lmfn`` =
  ``lka-msm-ifm@mr``, ``ifm`` = ``ifm@mr``) fold together. Official LKDN weights do not stand in for ``lka``.
- Table 3 holds every non-ablation zoo model in the store plus LMFN; a model's published numbers follow in a
  "(published)" row right under its measured row. Only PSNR/SSIM are ranked (Params/FLOPs are costs, and
  bicubic's zero would always "win"); ranks count measured rows only, on the rounded shown values.
"""

from __future__ import annotations

import csv
import math
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from harness.paths import shared_dir
from harness.store import Store
from harness.zoo import SCALES, ModelSpec, UnknownModelError, get_spec
from lmfn.cells import DEFAULT_SCHEME, SCHEMES
from lmfn.variants import PATTERNS, parse_variant

DEFAULT_PROTOCOL = "basicsr"
TABLE3_SETS = ("Set5", "Set14", "B100", "Urban100", "Manga109")
FALLBACK_SETS = ("Manga109", "Urban100", "B100", "Set14", "Set5", "Default")  # paper's set first
LMFN = f"lka-msm-ifm@{DEFAULT_SCHEME}"
TRAINED = "†"
PROTOCOL_MARKS = {"matlab": "§"}  # any other non-default protocol gets "¶"
PARAMS, FLOPS, PSNR, SSIM = "Params (K)", "FLOPs (G)", "PSNR", "SSIM"
DIGITS = {PARAMS: 0, FLOPS: 1, PSNR: 2, SSIM: 4}  # shown precision; ranks compare these rounded values
RANKED = (PSNR, SSIM)
SCHEME_LABELS = {
    "cascade": "Cascade",
    "parallel": "Parallel",
    "mr": "Merge-and-run (LMFN)",
    "mr-cross": "Merge-and-run, crossed",
}


class EmptyStoreError(ValueError):
    """The store has nothing to report (a ValueError so the CLI prints it as one line)."""


@dataclass
class ReportTable:
    key: str
    caption: str
    values: pd.DataFrame  # index (block, row label); columns (group, field); NaN = missing
    rank: pd.DataFrame
    marks: pd.DataFrame
    sources: pd.DataFrame
    row_kind: pd.Series  # "measured" | "published"
    notes: list[str] = field(default_factory=list)
    row_header: str = "Model"


@dataclass
class Report:
    tables: list[ReportTable]
    figure: pd.DataFrame  # one row per point: label, flops_g, params_k, psnr, highlight
    figure_caption: str
    figure_notes: list[str]
    provenance: pd.DataFrame
    store: str


# ----------------------------------------------------------------------------------------------------------
# models and rows


def _spec(name: str) -> ModelSpec | None:
    try:
        return get_spec(name)
    except UnknownModelError:
        return None


def canonical(name: str) -> str:
    """One key per distinct network: LMFN-family aliases fold (``lmfn`` -> ``lka-msm-ifm@mr``)."""
    spec = _spec(name)
    if spec is not None and spec.family != "lmfn":
        return spec.name
    try:
        pattern, scheme = parse_variant(name)
    except ValueError:
        return spec.name if spec else name
    return f"{pattern}@{scheme}" if "ifm" in pattern else pattern  # the scheme only matters inside IFM


def _label(key: str) -> str:
    if key == LMFN:
        return "LMFN"
    spec = _spec(key)
    return (spec.published_name if spec and spec.published_name else key) if spec else key


def _preferred_protocol(key: str) -> str:
    spec = _spec(key)
    return spec.protocol if spec else DEFAULT_PROTOCOL


def _frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["uid", "model", "key", "scale", "dataset", "protocol", "psnr", "ssim", "source", "created_at"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*cols, "row"])
    df["key"] = [canonical(m) for m in df["model"]]
    df["row"] = rows
    return df


def newest_evals(rows: list[dict]) -> pd.DataFrame:
    """One eval row per (key, scale, dataset): the model's preferred protocol first, then the newest."""
    df = _frame([r for r in rows if r["kind"] == "eval"])
    df["pref"] = [p == _preferred_protocol(k) for k, p in zip(df["key"], df["protocol"], strict=True)]
    df = df.sort_values(["pref", "created_at", "uid"])
    return df.groupby(["key", "scale", "dataset"]).tail(1).set_index(["key", "scale", "dataset"])


def newest_profiles(rows: list[dict]) -> pd.DataFrame:
    """One profile row per (key, scale): the newest whose FLOPs are for the 1280x720 output."""
    prof = [r for r in rows if r["kind"] == "profile" and r["metrics"].get("input", "hd720") == "hd720"]
    df = _frame(prof).sort_values(["created_at", "uid"])
    return df.groupby(["key", "scale"]).tail(1).set_index(["key", "scale"])


def load_published(path: str | Path | None = None) -> dict[tuple[str, int], dict]:
    """Published rows by (lower-case name, scale): ``baselines/published.csv``, else the reference copy."""
    if path is None:
        packaged = resources.files("baselines") / "published.csv"
        ref = shared_dir()
        if packaged.is_file():
            path = Path(str(packaged))
        elif ref is not None and (ref / "reference" / "published.csv").is_file():
            path = ref / "reference" / "published.csv"
        else:
            return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["model"].strip().lower(), int(r["scale"])): r for r in csv.DictReader(f)}


def _num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


# ----------------------------------------------------------------------------------------------------------
# provenance and the table builder


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
class _Builder:
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


def _protocol_mark(protocol: str) -> str:
    return "" if protocol in ("", DEFAULT_PROTOCOL) else PROTOCOL_MARKS.get(protocol, "¶")


class _Context:
    """Everything the table functions share: deduplicated rows, published numbers, provenance."""

    def __init__(self, rows: list[dict], published: dict[tuple[str, int], dict]) -> None:
        self.evals = newest_evals(rows)
        self.profiles = newest_profiles(rows)
        self.published = published
        self.prov = Provenance()
        self.trained: dict[str, str] = {}  # label -> training description, for the dagger footnote
        self.protocols: set[str] = set()

    def metric_cells(self, key: str, scale: int, dataset: str, group: str, label: str) -> dict:
        try:
            r = self.evals.loc[(key, scale, dataset)]
        except KeyError:
            return {}
        row = r["row"]
        mark = _protocol_mark(r["protocol"])
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
        spec = _spec(key)
        name = (spec.published_name if spec else None) or ("LMFN" if key == LMFN else None)
        pub = self.published.get((name.lower(), scale)) if name else None
        if pub is None:
            return {}
        src = self.prov.add_published(pub["model"], scale, pub.get("source", ""))
        cells = {
            ("", PARAMS): (_num(pub.get("params_k")), "", src),
            ("", FLOPS): (_num(pub.get("flops_g")), "", src),
        }
        for ds in TABLE3_SETS:
            for f in (PSNR, SSIM):
                cells[(ds, f)] = (_num(pub.get(f"{ds.lower()}_{f.lower()}")), "", src)
        return {k: v for k, v in cells.items() if not math.isnan(v[0])}

    def legend(self, b: _Builder) -> None:
        """Footnotes for the marks used so far (then reset, so each table explains its own marks)."""
        used = {m for r in b.rows for c in r[2].values() for m in c[1]}
        note = "PSNR/SSIM on the Y channel under protocol basicsr unless marked"
        marks = [f"{PROTOCOL_MARKS.get(p, '¶')} protocol {p}" for p in sorted(self.protocols)]
        b.notes.append(note + (f" ({'; '.join(marks)})." if marks else "."))
        if TRAINED in used:
            by_run: dict[str, list[str]] = {}
            for label, run in self.trained.items():
                by_run.setdefault(run, []).append(label)
            runs = "; ".join(f"{run}: {', '.join(labels)}" for run, labels in by_run.items())
            b.notes.append(f"{TRAINED} Weights trained by lmfn-bench, not official checkpoints ({runs}).")
        b.notes.append("A dash (–) marks a number not in the store.")
        self.trained, self.protocols = {}, set()

    def pick_dataset(self, keys: Iterable[str], scale: int, wanted: str) -> tuple[str | None, str | None]:
        """The set to show for ``keys`` at ``scale``: ``wanted`` if a row has it, else the best available."""
        keys = set(keys)
        have = {d for (k, s, d) in self.evals.index if k in keys and s == scale}
        for ds in (wanted, *(d for d in FALLBACK_SETS if d != wanted)):
            if ds in have:
                note = (
                    None if ds == wanted else f"{wanted} ×{scale} is not in the store; showing {ds} ×{scale}."
                )
                return ds, note
        return None, f"No PSNR/SSIM at ×{scale} in the store for these models."


# ----------------------------------------------------------------------------------------------------------
# the tables


def _ablation_table(
    ctx: _Context, key: str, caption: str, header: str, rows: list[tuple[str, str]], ds: str, scale: int
) -> ReportTable:
    """Tables 1 and 2 share one layout: Params, FLOPs, PSNR, SSIM on one set, one row per variant."""
    dataset, fallback = ctx.pick_dataset([k for k, _ in rows], scale, ds)
    b = _Builder(key, caption.format(ds=dataset or ds, s=scale), [("", PARAMS), ("", FLOPS)], header)
    b.columns += [(dataset or ds, PSNR), (dataset or ds, SSIM)]
    for k, label in rows:
        cells = ctx.cost_cells(k, scale)
        if dataset:
            cells |= ctx.metric_cells(k, scale, dataset, dataset, label)
        b.add(("", label), "measured", cells)
    if fallback:
        b.notes.append(fallback)
    _missing_notes(b, metrics=dataset is not None)  # with no set at all, the fallback note says it
    ctx.legend(b)
    return b.build()


def _missing_notes(b: _Builder, metrics: bool = True) -> None:
    """Say which measured rows lack PSNR/SSIM or Params/FLOPs (block-qualified where blocks exist)."""
    checks = [((PSNR,), "PSNR/SSIM")] if metrics else []
    for fields, what in [*checks, ((PARAMS, FLOPS), "Params/FLOPs (run lmfn-bench profile)")]:
        names = [
            " ".join(reversed(idx)).strip()
            for idx, kind, cells in b.rows
            if kind == "measured" and not any(c[1] in fields for c in cells)
        ]
        if names:
            b.notes.append(f"No {what} in the store for: {', '.join(names)}.")


def table1(ctx: _Context, dataset: str = "Manga109", scale: int = 4) -> ReportTable:
    """Table 1: the backbone ablation over cell patterns (IFF merge-and-run inside IFM)."""
    rows = [(canonical(p), p.upper() + (" (LMFN)" if canonical(p) == LMFN else "")) for p in PATTERNS]
    return _ablation_table(
        ctx, "table1", "Ablation of the backbone cell patterns on {ds} ×{s}.", "Cells", rows, dataset, scale
    )


def table2(ctx: _Context, dataset: str = "Manga109", scale: int = 4) -> ReportTable:
    """Table 2: the IFF schemes inside IFM of the full LKA-MSM-IFM pattern."""
    rows = [(f"lka-msm-ifm@{s}", SCHEME_LABELS.get(s, s)) for s in SCHEMES]
    return _ablation_table(
        ctx, "table2", "Comparison of IFF schemes on {ds} ×{s}.", "IFF scheme", rows, dataset, scale
    )


def table3_models(ctx: _Context) -> list[str]:
    """Keys of every model Table 3 shows: any non-ablation model with a result, plus LMFN."""
    keys = set(ctx.evals.index.get_level_values(0)) | set(ctx.profiles.index.get_level_values(0))
    return sorted(k for k in keys if k == LMFN or (_spec(k) is None or _spec(k).family != "lmfn"))


def table3(ctx: _Context) -> ReportTable:
    """Table 3: lightweight models on the five sets at x2/x3/x4, measured with published rows beneath."""
    # the paper's five sets, plus any other set in the store (e.g. the embedded Default set of a fresh machine)
    others = sorted({d for (_, _, d) in ctx.evals.index} - set(TABLE3_SETS))
    sets = (*TABLE3_SETS, *others)
    cols = [("", PARAMS), ("", FLOPS), *((ds, f) for ds in sets for f in (PSNR, SSIM))]
    b = _Builder("table3", "Lightweight SR models; FLOPs for a 1280×720 output.", cols)
    keys = table3_models(ctx)
    for scale in SCALES:
        entries = []
        for k in keys:
            label = _label(k)
            cells = ctx.cost_cells(k, scale)
            for ds in sets:
                cells |= ctx.metric_cells(k, scale, ds, ds, label)
            if not cells:
                continue
            pub = ctx.published_cells(k, scale)
            size = cells.get(("", PARAMS), pub.get(("", PARAMS), (math.inf,)))[0]
            size = math.inf if math.isnan(size) else size  # unknown size sorts last
            order = (k == "bicubic" and -1) or (k == LMFN and 1) or 0  # bicubic first, LMFN (ours) last
            entries.append(((order, size, label), label, cells, pub))
        for _, label, cells, pub in sorted(entries, key=lambda e: e[0]):
            b.add((f"×{scale}", label), "measured", cells)
            if pub:
                b.add((f"×{scale}", f"{label} (published)"), "published", pub)
    _missing_notes(b)
    empty = [f"×{s}" for s in SCALES if not any(r[0][0] == f"×{s}" for r in b.rows)]
    if empty:
        b.notes.append(f"No results at {', '.join(empty)}.")
    if others:
        b.notes.append(f"Columns {', '.join(others)}: sets outside the paper's five (no published numbers).")
    b.notes.append(
        "Bold = best, underlined = second best measured PSNR/SSIM per column and scale. A '(published)' row "
        "repeats the numbers from the model's paper, right below the numbers measured here."
    )
    ctx.legend(b)
    return b.build()


def figure_points(
    ctx: _Context, dataset: str = "Manga109", scale: int = 4
) -> tuple[pd.DataFrame, str, list[str]]:
    """Fig. 1's points: PSNR vs FLOPs (G) with params (K) for every Table 3 model that has all three."""
    keys = table3_models(ctx)
    ds, note = ctx.pick_dataset(keys, scale, dataset)
    notes = [note] if note else []
    pts, missing = [], []
    for k in keys:
        cost, metric = ctx.cost_cells(k, scale), ctx.metric_cells(k, scale, ds, ds, _label(k)) if ds else {}
        if cost and metric and not math.isnan(cost[("", FLOPS)][0]):
            pts.append(
                {
                    "label": _label(k),
                    "flops_g": cost[("", FLOPS)][0],
                    "params_k": cost[("", PARAMS)][0],
                    "psnr": metric[(ds, PSNR)][0],
                    "highlight": k == LMFN,
                }
            )
        elif ds:
            missing.append(_label(k) + (" (no FLOPs)" if metric else f" (no {ds} ×{scale})"))
    if missing:
        notes.append(f"Not plotted: {', '.join(missing)}.")
    ctx.trained, ctx.protocols = {}, set()
    cols = ["label", "flops_g", "params_k", "psnr", "highlight"]
    caption = f"PSNR on {ds or dataset} ×{scale} against FLOPs (1280×720 output); marker area ∝ parameters."
    return pd.DataFrame(pts, columns=cols), caption, notes


def build_report(
    store: str | Path, dataset: str = "Manga109", scale: int = 4, published: str | Path | None = None
) -> Report:
    """Read ``store`` and build Tables 1-3 and the Fig. 1 points. An empty or absent store is an error."""
    path = Path(store)
    if not path.is_file():
        raise FileNotFoundError(f"results store {path} does not exist; run `lmfn-bench eval` first")
    try:
        rows = [r for r in Store(path).rows() if r["kind"] in ("eval", "profile")]
    except sqlite3.DatabaseError as e:
        raise ValueError(f"{path} is not a results store ({e})") from None
    if not rows:
        raise EmptyStoreError(
            f"results store {path} has no eval or profile results; run `lmfn-bench eval` first"
        )
    ctx = _Context(rows, load_published(published))
    tables = [table1(ctx, dataset, scale), table2(ctx, dataset, scale), table3(ctx)]
    fig, caption, notes = figure_points(ctx, dataset, scale)
    return Report(tables, fig, caption, notes, ctx.prov.frame(), str(path))
