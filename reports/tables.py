"""Report inputs -> the paper's Tables 1-3 (and the points of Fig. 1) as pandas frames; pure (no store, zoo).

A :class:`ReportTable` holds numbers, never formatted text: ``values`` (NaN = not in the store), ``rank``
(1 = best, 2 = second, per column within a block), ``marks`` (footnote symbols per cell), ``sources``
(provenance id per cell) and ``notes`` (legend lines, what is missing). :mod:`reports.render` formats them;
:mod:`reports.inputs` reads the store and the zoo into :class:`ReportInputs`.

Choices made here (row selection is in :mod:`reports.context`):
- Tables 1/2 read only LMFN-family rows (ablations trained by this tool), by the keys the inputs give for each
  pattern and scheme; aliases were folded on reading. Official LKDN weights do not stand in for ``lka``.
- Table 3 holds every non-ablation model in the store plus LMFN; a model's published numbers follow in a
  "(published)" row right under its measured row. Only PSNR/SSIM are ranked (Params/FLOPs are costs, and
  bicubic's zero would always "win"); ranks count measured rows only, on the rounded shown values.
"""

from __future__ import annotations

import math

import pandas as pd

from reports.context import Builder, Context
from reports.schema import (
    DIGITS,
    FLOPS,
    PARAMS,
    PSNR,
    SSIM,
    ModelInfo,
    Report,
    ReportInputs,
    ReportTable,
)

__all__ = ["DIGITS", "ModelInfo", "Report", "ReportInputs", "ReportTable", "build_report"]

SCHEME_LABELS = {
    "cascade": "Cascade",
    "parallel": "Parallel",
    "mr": "Merge-and-run",
    "mr-cross": "Merge-and-run, crossed",
}


def _ours(ctx: Context, key: str, label: str) -> str:
    """Tables 1/2 name the row that is the paper's model."""
    return label + (" (LMFN)" if key == ctx.inputs.lmfn else "")


def _ablation_table(
    ctx: Context, key: str, caption: str, header: str, rows: list[tuple[str, str]], ds: str, scale: int
) -> ReportTable:
    """Tables 1 and 2 share one layout: Params, FLOPs, PSNR, SSIM on one set, one row per variant."""
    dataset, fallback = ctx.pick_dataset([k for k, _ in rows], scale, ds)
    b = Builder(key, caption.format(ds=dataset or ds, s=scale), [("", PARAMS), ("", FLOPS)], header)
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


def _missing_notes(b: Builder, metrics: bool = True) -> None:
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


def table1(ctx: Context, dataset: str, scale: int) -> ReportTable:
    """Table 1: the backbone ablation over cell patterns (IFF merge-and-run inside IFM)."""
    rows = [(k, _ours(ctx, k, p.upper())) for p, k in ctx.inputs.patterns]
    return _ablation_table(
        ctx, "table1", "Ablation of the backbone cell patterns on {ds} ×{s}.", "Cells", rows, dataset, scale
    )


def table2(ctx: Context, dataset: str, scale: int) -> ReportTable:
    """Table 2: the IFF schemes inside IFM of the full LKA-MSM-IFM pattern."""
    rows = [(k, _ours(ctx, k, SCHEME_LABELS.get(s, s))) for s, k in ctx.inputs.schemes]
    return _ablation_table(
        ctx, "table2", "Comparison of IFF schemes on {ds} ×{s}.", "IFF scheme", rows, dataset, scale
    )


def table3_models(ctx: Context) -> list[str]:
    """Keys of every model Table 3 shows: any non-ablation model with a result, plus LMFN."""
    keys = set(ctx.evals.index.get_level_values(0)) | set(ctx.profiles.index.get_level_values(0))
    lmfn = ctx.inputs.lmfn
    return sorted(k for k in keys if k == lmfn or ctx.info(k) is None or ctx.info(k).family != "lmfn")


def _table3_entry(ctx: Context, key: str, scale: int, sets: tuple[str, ...]) -> tuple | None:
    """(sort key, label, measured cells, published cells) of one model at one scale; None without results."""
    label = ctx.label(key)
    cells = ctx.cost_cells(key, scale)
    for ds in sets:
        cells |= ctx.metric_cells(key, scale, ds, ds, label)
    if not cells:
        return None
    pub = ctx.published_cells(key, scale)
    size = cells.get(("", PARAMS), pub.get(("", PARAMS), (math.inf,)))[0]
    size = math.inf if math.isnan(size) else size  # unknown size sorts last
    info = ctx.info(key)
    # bicubic first, LMFN (ours) last, the rest by size
    order = -1 if info and info.family == "bicubic" else 1 if key == ctx.inputs.lmfn else 0
    return (order, size, label), label, cells, pub


def table3(ctx: Context) -> ReportTable:
    """Table 3: lightweight models on the five sets at x2/x3/x4, measured with published rows beneath."""
    # the paper's five sets, plus any other set in the store (e.g. the embedded Default set of a new machine)
    paper_sets, scales = ctx.inputs.sets, ctx.inputs.scales
    others = sorted({d for (_, _, d) in ctx.evals.index} - set(paper_sets))
    sets = (*paper_sets, *others)
    cols = [("", PARAMS), ("", FLOPS), *((ds, f) for ds in sets for f in (PSNR, SSIM))]
    b = Builder("table3", "Lightweight SR models; FLOPs for a 1280×720 output.", cols)
    keys = table3_models(ctx)
    for scale in scales:
        entries = [e for e in (_table3_entry(ctx, k, scale, sets) for k in keys) if e is not None]
        for _, label, cells, pub in sorted(entries, key=lambda e: e[0]):
            b.add((f"×{scale}", label), "measured", cells)
            if pub:
                b.add((f"×{scale}", f"{label} (published)"), "published", pub)
    _missing_notes(b)
    empty = [f"×{s}" for s in scales if not any(r[0][0] == f"×{s}" for r in b.rows)]
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


def figure_points(ctx: Context, dataset: str, scale: int) -> tuple[pd.DataFrame, str, list[str]]:
    """Fig. 1's points: PSNR vs FLOPs (G) with params (K) for every Table 3 model that has all three."""
    keys = table3_models(ctx)
    ds, note = ctx.pick_dataset(keys, scale, dataset)
    notes = [note] if note else []
    pts, missing = [], []
    for k in keys:
        label = ctx.label(k)
        cost, metric = ctx.cost_cells(k, scale), ctx.metric_cells(k, scale, ds, ds, label) if ds else {}
        if cost and metric and not math.isnan(cost[("", FLOPS)][0]):
            pts.append(
                {
                    "label": label,
                    "flops_g": cost[("", FLOPS)][0],
                    "params_k": cost[("", PARAMS)][0],
                    "psnr": metric[(ds, PSNR)][0],
                    "highlight": k == ctx.inputs.lmfn,
                }
            )
        elif ds:
            missing.append(label + (" (no FLOPs)" if metric else f" (no {ds} ×{scale})"))
    if missing:
        notes.append(f"Not plotted: {', '.join(missing)}.")
    ctx.reset_marks()  # the figure has no footnotes: drop the marks its cells collected
    cols = ["label", "flops_g", "params_k", "psnr", "highlight"]
    caption = f"PSNR on {ds or dataset} ×{scale} against FLOPs (1280×720 output); marker area ∝ parameters."
    return pd.DataFrame(pts, columns=cols), caption, notes


def build_report(inputs: ReportInputs, dataset: str, scale: int) -> Report:
    """Tables 1-3 and the Fig. 1 points from ``inputs`` (Tables 1-2 and Fig. 1 on ``dataset`` ×``scale``)."""
    ctx = Context(inputs)
    tables = [table1(ctx, dataset, scale), table2(ctx, dataset, scale), table3(ctx)]
    fig, caption, notes = figure_points(ctx, dataset, scale)
    return Report(tables, fig, caption, notes, ctx.prov.frame(), inputs.store)
