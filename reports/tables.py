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
- Tables 1/2 with an ablation grid on their set (the newest grid there): mean ± std over its seeds and a
  "Δ PSNR vs LMFN" column, the paired bootstrap interval of :mod:`reports.stats` (seeds, then images);
  ``*`` = the interval excludes 0; one that contains 0 is "not resolved at this budget". Without grid rows
  the tables are one number per variant, as before.
- Table 3 marks (≈) a best PSNR whose paired interval against the second best contains 0 (images only).
- Comparisons (``report --compare A B``): the same interval for any two measured models on the same images.
"""

from __future__ import annotations

import math

from reports import panels
from reports.context import Builder, Context, Grid, grids
from reports.points import figure_points, table3_models
from reports.schema import (
    DELTA,
    DI,
    DIFF,
    DIGITS,
    FLOPS,
    IMAGES,
    PARAMS,
    PSNR,
    RUNTIME,
    SEEDS,
    SSIM,
    ModelInfo,
    Report,
    ReportInputs,
    ReportTable,
    StatsOptions,
)
from reports.stats import Interval, PairingError, paired_bootstrap

__all__ = ["DIGITS", "ModelInfo", "Report", "ReportInputs", "ReportTable", "build_report"]

RESOLVED = "*"  # a difference whose interval excludes 0
CLOSE = "≈"  # Table 3: best and second best not resolved by their paired interval

SCHEME_LABELS = {
    "cascade": "Cascade",
    "parallel": "Parallel",
    "mr": "Merge-and-run",
    "mr-cross": "Merge-and-run, crossed",
}


def _ours(ctx: Context, key: str, label: str) -> str:
    """Tables 1/2 name the row that is the paper's model."""
    return label + (" (LMFN)" if key == ctx.inputs.lmfn else "")


def _level(ctx: Context) -> str:
    return f"{ctx.stats.level * 100:g}%"


def _interval(ctx: Context, a: dict, b: dict, what: str = "") -> Interval:
    """The paired interval of ``a - b`` (seed -> {image: PSNR}); a pairing error is prefixed by ``what``."""
    o = ctx.stats
    try:
        return paired_bootstrap(a, b, o.level, o.n_resamples, o.seed)
    except PairingError as e:
        raise PairingError(f"{what}: {e}" if what else str(e)) from None


def _ablation_table(
    ctx: Context, key: str, caption: str, header: str, rows: list[tuple[str, str]], ds: str, scale: int
) -> ReportTable:
    """Tables 1 and 2 share one layout: Params, FLOPs, PSNR, SSIM on one set, one row per variant; with an
    ablation grid in the store, mean ± std over its seeds and a paired difference to LMFN."""
    dataset, fallback = ctx.pick_dataset([k for k, _ in rows], scale, ds)
    name = dataset or ds
    grid = next(iter(grids(ctx.inputs, [k for k, _ in rows], scale, dataset)), None) if dataset else None
    b = Builder(key, caption.format(ds=name, s=scale), [("", PARAMS), ("", FLOPS)], header)
    b.columns += [(name, PSNR), (name, SSIM), *([(name, DELTA)] if grid else [])]
    deltas: dict[str, Interval] = {}
    single: list[str] = []  # rows shown from a standalone run beside a grid
    for k, label in rows:
        cells = ctx.cost_cells(k, scale)
        if grid and k in grid.runs:
            cells |= ctx.grid_cells(grid, k, name, label)
            cells |= _delta_cell(ctx, grid, k, (name, scale), label, deltas)
        elif dataset and (metrics := ctx.metric_cells(k, scale, dataset, dataset, label)):
            cells |= metrics
            single += [label] if grid else []
        b.add(("", label), "measured", cells)
    if fallback:
        b.notes.append(fallback)
    if grid:
        _grid_notes(ctx, b, grid, rows, deltas)
    if grid and single:
        b.notes.append(f"Not in grid {grid.name} (newest single run shown, no {DELTA}): {', '.join(single)}.")
    _missing_notes(b, metrics=dataset is not None)  # with no set at all, the fallback note says it
    ctx.legend(b)
    return b.build()


def _delta_cell(
    ctx: Context, grid: Grid, key: str, where: tuple[str, int], label: str, out: dict[str, Interval]
) -> dict:
    """The Δ-to-LMFN cell of ``key`` (paired over the grid's seeds and images); records it in ``out``."""
    lmfn = ctx.inputs.lmfn
    a, b = grid.per_image(key), grid.per_image(lmfn)
    if key == lmfn or a is None or b is None:
        return {}
    ds, scale = where
    iv = out[label] = _interval(ctx, a, b, f"{label} vs LMFN on {ds} ×{scale} (grid {grid.name})")
    src = tuple(ctx.prov.add(r) for r in grid.runs[key].values())
    return {(ds, DELTA): (iv.mean, RESOLVED if iv.resolved else "", src, math.nan, (iv.lo, iv.hi))}


def _delta_note(ctx: Context, deltas: dict[str, Interval]) -> str:
    """What the Δ column is: statistic, interval, resampling, the fixed bootstrap seed."""
    o = ctx.stats
    one = [label for label, iv in deltas.items() if iv.method == "images"]
    how = "seeds, then images within each drawn seed"
    if one:
        how = "images only" if len(one) == len(deltas) else f"{how} (images only for {', '.join(one)})"
    return (
        f"{DELTA}: mean paired difference (variant − LMFN, dB) over seeds and images with its {_level(ctx)} "
        f"percentile bootstrap interval ({o.n_resamples:,} resamples of {how}; the same images on both "
        f"sides; bootstrap seed {o.seed}, fixed); LMFN's own row is the reference (–)."
        + (" One seed: the interval is over images only, so run-to-run noise is not in it." if one else "")
    )


def _grid_notes(
    ctx: Context, b: Builder, grid: Grid, rows: list[tuple[str, str]], deltas: dict[str, Interval]
) -> None:
    """The budget (caption and notes), what the cells and the Δ column are, which differences are resolved."""
    multi = grid.seeds() != "1 seed"
    b.caption += (
        f" {'Mean ± std' if multi else 'One run'} over {grid.seeds()} of grid {grid.name} "
        f"(profile {grid.recipe('profile')}, {grid.recipe('iters')} iterations); {DELTA} with "
        f"{_level(ctx)} paired bootstrap intervals."
    )
    b.notes.append(f"Budget: {grid.budget()}.")
    cells = "mean ± std over seeds (std with ddof=1)" if multi else "one seed per variant"
    b.notes.append(f"Cells: {cells}.")
    if deltas:
        b.notes.append(_delta_note(ctx, deltas))
    if resolved := [label for label, iv in deltas.items() if iv.resolved]:
        names = ", ".join(resolved)
        b.notes.append(f"{RESOLVED} The interval excludes 0: resolved at this budget ({names}).")
    if unresolved := [label for label, iv in deltas.items() if not iv.resolved]:
        b.notes.append(
            "Not resolved at this budget (the interval contains 0; more seeds or iterations may resolve "
            f"it): {', '.join(unresolved)}."
        )
    lmfn = ctx.inputs.lmfn
    if no_delta := [label for k, label in rows if k in grid.runs and k != lmfn and label not in deltas]:
        why = "LMFN has no run with per-image PSNR" if grid.per_image(lmfn) is None else "no per-image PSNR"
        b.notes.append(f"No {DELTA} for {', '.join(no_delta)} ({why} in grid {grid.name}).")


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


def _table3_entry(ctx: Context, key: str, scale: int, sets: tuple[str, ...]) -> tuple | None:
    """(sort key, key, label, measured cells, published cells) of a model at one scale; None if no results."""
    label = ctx.label(key)
    cells = ctx.cost_cells(key, scale) | ctx.runtime_cells(key, scale)
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
    return (order, size, label), key, label, cells, pub


def table3(ctx: Context) -> ReportTable:
    """Table 3: lightweight models on the five sets at x2/x3/x4, measured with published rows beneath."""
    # the paper's five sets, plus any other set in the store (e.g. the embedded Default set of a new machine)
    paper_sets, scales = ctx.inputs.sets, ctx.inputs.scales
    others = sorted({d for (_, _, d) in ctx.evals.index} - set(paper_sets))
    sets = (*paper_sets, *others)
    runtime = [("", RUNTIME)] if ctx.runtimes.device else []  # GPU latency, when the store has it
    di, di_notes = panels.di_cells(ctx, scales)  # a DI column only where lam rows exist
    cols = [("", PARAMS), ("", FLOPS), *runtime, *([("", DI)] if di else [])]
    cols += [(ds, f) for ds in sets for f in (PSNR, SSIM)]
    caption = "Lightweight SR models; FLOPs for a 1280×720 output." + ctx.runtimes.caption()
    b = Builder("table3", caption, cols)
    keys = table3_models(ctx)
    measured: dict[tuple[str, str], tuple[str, int]] = {}  # row index -> (key, scale), for the ≈ marks
    for scale in scales:
        entries = [e for e in (_table3_entry(ctx, k, scale, sets) for k in keys) if e is not None]
        for _, key, label, cells, pub in sorted(entries, key=lambda e: e[0]):
            measured[(f"×{scale}", label)] = (key, scale)
            b.add((f"×{scale}", label), "measured", cells | di.get((key, scale), {}))
            if pub:
                b.add((f"×{scale}", f"{label} (published)"), "published", pub)
    _missing_notes(b)
    empty = [f"×{s}" for s in scales if not any(r[0][0] == f"×{s}" for r in b.rows)]
    if empty:
        b.notes.append(f"No results at {', '.join(empty)}.")
    if others:
        b.notes.append(f"Columns {', '.join(others)}: sets outside the paper's five (no published numbers).")
    if ctx.runtimes.others:
        b.notes.append(f"Runtime also measured on {', '.join(ctx.runtimes.others)} (not shown; see the store).")
    b.notes += di_notes
    b.notes.append(
        "Bold = best, underlined = second best measured PSNR/SSIM per column and scale. A '(published)' row "
        "repeats the numbers from the model's paper, right below the numbers measured here."
    )
    ctx.legend(b)
    t = b.build()
    _close_marks(ctx, t, measured)
    return t


def _close_marks(ctx: Context, t: ReportTable, measured: dict[tuple[str, str], tuple[str, int]]) -> None:
    """Mark (≈) a column's best measured PSNR when the paired interval over its per-image PSNR against the
    second best contains 0. Only the top two per column: a handful of bootstraps per report."""
    blocks = t.rank.index.get_level_values("block")
    close = False
    for col in (c for c in t.values.columns if c[1] == PSNR):
        for block in blocks.unique():
            rank = t.rank.loc[blocks == block, col]
            best, second = list(rank.index[rank == 1]), list(rank.index[rank == 2])
            if len(best) != 1:  # a tie at the shown precision is visible as it is
                continue
            (key, scale), ds = measured[best[0]], col[0]
            for other in second:
                pair = ctx.shown_per_image(key, measured[other][0], scale, ds)
                if isinstance(pair, str):
                    continue
                try:
                    iv = _interval(ctx, {0: pair[0]}, {0: pair[1]})
                except PairingError:  # not on the same images: nothing to say
                    continue
                if not iv.resolved:
                    t.marks.at[best[0], col] += CLOSE
                    close = True
                    break
    if close:
        t.notes.append(
            f"{CLOSE} Best and second-best PSNR of the column are not resolved: the {_level(ctx)} paired "
            f"bootstrap interval of their per-image difference contains 0 (images only; bootstrap seed "
            f"{ctx.stats.seed}, fixed)."
        )


def _compared(ctx: Context, a: str, b: str, scale: int, ds: str) -> tuple[Interval, tuple] | str:
    """``a - b`` at (scale, ds): over seeds and images when both have runs in one grid with >= 2 seeds in
    common, else over the images of the rows shown in the tables; or why there is no paired interval."""
    for grid in grids(ctx.inputs, (a, b), scale, ds):
        pa, pb = grid.per_image(a), grid.per_image(b)
        if pa and pb and len(set(pa) & set(pb)) >= 2:
            rows = [*grid.runs[a].values(), *grid.runs[b].values()]
            break
    else:
        pair = ctx.shown_per_image(a, b, scale, ds)
        if isinstance(pair, str):
            return pair
        (pa, pb), rows = ({0: pair[0]}, {0: pair[1]}), [ctx.evals.loc[(k, scale, ds)]["row"] for k in (a, b)]
    try:
        iv = _interval(ctx, pa, pb)
    except PairingError as e:
        return str(e)
    return iv, tuple(ctx.prov.add(r) for r in rows)


def _common_sets(ctx: Context, a: str, b: str) -> list[tuple[int, str]]:
    """(scale, set) pairs where both models have an eval row: by scale, then in Table 3's set order."""
    have = [{(s, d) for (k, s, d) in ctx.evals.index if k == key} for key in (a, b)]
    order = {d: i for i, d in enumerate((*ctx.inputs.sets, ctx.inputs.default_set))}
    return sorted(have[0] & have[1], key=lambda sd: (sd[0], order.get(sd[1], len(order)), sd[1]))


def comparisons(ctx: Context, pairs: tuple[tuple[str, str], ...]) -> ReportTable | None:
    """`report --compare A B`: the paired PSNR difference of each pair on every set both were measured on."""
    if not pairs:
        return None
    o, level = ctx.stats, _level(ctx)
    cols = [("", DIFF), ("", SEEDS), ("", IMAGES)]
    b = Builder("comparisons", f"Paired PSNR differences with {level} bootstrap intervals.", cols, "Set")
    found, skipped = [], []
    for first, second in pairs:
        block, start = f"{ctx.label(first)} − {ctx.label(second)}", len(b.rows)
        for scale, ds in _common_sets(ctx, first, second):
            res = _compared(ctx, first, second, scale, ds)
            if isinstance(res, str):
                skipped.append(f"{ds} ×{scale} ({block}): {res}")
                continue
            (iv, src), where = res, f"{ds} ×{scale}"
            found.append((f"{block} on {where}", iv))
            cell = (iv.mean, RESOLVED if iv.resolved else "", src, math.nan, (iv.lo, iv.hi))
            b.add((block, where), "measured", {("", DIFF): cell, ("", SEEDS): (iv.n_seeds, "", src),
                                               ("", IMAGES): (iv.n_images, "", src)})  # fmt: skip
        if len(b.rows) == start:
            b.add((block, "no set in common"), "measured", {})
    b.notes.append(
        f"{DIFF}: mean over seeds of the mean per-image PSNR difference (first − second model, dB) with its "
        f"{level} percentile bootstrap interval ({o.n_resamples:,} resamples; the same images on both sides; "
        f"bootstrap seed {o.seed}, fixed). Seeds > 1: both models' runs of one ablation grid, resampling "
        "seeds and then images within each drawn seed; Seeds = 1: images only (run-to-run noise not in it)."
    )
    if resolved := [w for w, iv in found if iv.resolved]:
        b.notes.append(f"{RESOLVED} The interval excludes 0: resolved ({'; '.join(resolved)}).")
    if unresolved := [w for w, iv in found if not iv.resolved]:
        b.notes.append(f"Not resolved (the interval contains 0): {'; '.join(unresolved)}.")
    if skipped:
        b.notes.append(f"No paired interval for: {'; '.join(skipped)}.")
    return b.build()


def build_report(
    inputs: ReportInputs,
    dataset: str,
    scale: int,
    stats: StatsOptions | None = None,
    compare: tuple[tuple[str, str], ...] = (),
) -> Report:
    """Tables 1-3 and the Fig. 1 points from ``inputs`` (Tables 1-2 and Fig. 1 on ``dataset`` ×``scale``);
    ``compare``: pairs of keys whose paired differences form the Comparisons section; ``stats``: how every
    interval is made (level, resamples, bootstrap seed)."""
    ctx = Context(inputs, stats)
    tables = [table1(ctx, dataset, scale), table2(ctx, dataset, scale), table3(ctx)]
    comps = comparisons(ctx, compare)
    fig, caption, notes = figure_points(ctx, dataset, scale)
    figs = [p for p in (panels.fig5(ctx, scale), panels.fig6(ctx, scale)) if p is not None]
    return Report(tables, fig, caption, notes, ctx.prov.frame(), inputs.store, comps, figs)
