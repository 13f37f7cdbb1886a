"""Figs. 5 and 6 and Table 3's DI column from the store's ``visual`` and ``lam`` rows; pure (rows in, panels out).

Choices made here:
- One image per figure and scale: the group of rows (Fig. 5: image and box; Fig. 6: image, window and every
  LAM setting, since DI changes with each) that most models share, the newest on a tie; per model the newest
  row of that group. Other groups are named in a note, not shown.
- Table 3's DI column uses Fig. 6's choice at each scale, so the table and the figure show one DI per model.
- Tile order as Table 3: bicubic first, LMFN last, the rest by label; Fig. 5 starts with the HR crop.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path

from reports.context import Context
from reports.schema import DI, Panel, Tile

LAM_SETTINGS = ("sigma", "fold", "kernel_size", "lr_resize")


def _order(ctx: Context, key: str) -> tuple:
    info = ctx.info(key)
    rank = -1 if info and info.family == "bicubic" else 1 if key == ctx.inputs.lmfn else 0
    return rank, ctx.label(key)


def _group_key(row: dict) -> Hashable:
    m, e = row.get("metrics") or {}, row.get("extra") or {}
    if row["kind"] == "visual":
        return row["dataset"], tuple(m.get("box") or ())
    return (row["dataset"], e.get("x"), e.get("y"), e.get("window"), *(e.get(k) for k in LAM_SETTINGS))


def choose(ctx: Context, kind: str, scale: int) -> tuple[dict[str, dict], int]:
    """The chosen group's newest row per model key (in tile order), and how many rows of ``kind`` at
    ``scale`` were left out (other images, boxes, windows or settings)."""
    rows = sorted(
        (r for r in ctx.inputs.rows if r["kind"] == kind and r["scale"] == scale),
        key=lambda r: (r["created_at"], r["uid"]),
    )
    groups: dict[Hashable, dict[str, dict]] = {}
    for r in rows:  # oldest first: a model's newest row of a group is written last
        groups.setdefault(_group_key(r), {})[r["key"]] = r
    if not groups:
        return {}, 0
    newest = {g: max(r["created_at"] for r in by_key.values()) for g, by_key in groups.items()}
    best = max(groups, key=lambda g: (len(groups[g]), newest[g]))
    chosen = groups[best]
    left = sum(len(v) for g, v in groups.items() if g != best)
    return {k: chosen[k] for k in sorted(chosen, key=lambda k: _order(ctx, k))}, left


def _exists(path: str) -> bool:
    return bool(path) and Path(path).is_file()


def lam_settings(row: dict) -> str:
    """The window and LAM settings of a lam row, as a caption fragment."""
    e = row.get("extra") or {}
    w = e.get("window", "?")
    return (
        f"{w}×{w} window at x={e.get('x', '?')}, y={e.get('y', '?')} (top-left, HR pixels); blur path σ "
        f"{e.get('sigma', '?')}→0 in {e.get('fold', '?')} steps, {e.get('kernel_size', '?')}×"
        f"{e.get('kernel_size', '?')} kernels; LR by {e.get('lr_resize', '?')} bicubic"
    )


def _tiles(ctx: Context, chosen: dict, png: str, text: Callable[[dict], str]) -> tuple[list[Tile], list[str]]:
    """One tile per chosen row (its ``metrics[png]`` picture, ``text(metrics)`` under it; provenance noted),
    and the labels whose picture file is missing."""
    tiles, missing = [], []
    for key, r in chosen.items():
        m = r.get("metrics") or {}
        tiles.append(Tile(ctx.label(key), m.get(png) or "", text(m), key == ctx.inputs.lmfn))
        ctx.prov.add(r)
        if not _exists(m.get(png) or ""):
            missing.append(ctx.label(key))
    return tiles, missing


def fig6(ctx: Context, scale: int) -> Panel | None:
    """Fig. 6: LAM maps side by side with the DI under each, from the lam rows at ``scale``."""
    chosen, left = choose(ctx, "lam", scale)
    if not chosen:
        return None
    first = next(iter(chosen.values()))
    tiles, no_map = _tiles(ctx, chosen, "map_png", lambda m: f"DI {m['di']:.2f}")
    caption = (
        f"LAM attribution maps on {first['dataset']} ×{scale}: {lam_settings(first)}. Under each map its "
        "diffusion index DI = (1 − Gini) × 100 (higher: the output draws on more input pixels)."
    )
    notes = [f"No map file for: {', '.join(no_map)} (DI shown alone)."] if no_map else []
    if left:
        notes.append(f"{left} other LAM result(s) at ×{scale} (other images, windows or settings) not shown.")
    return Panel("fig6", "Fig. 6.", caption, tiles, notes)


def fig5(ctx: Context, scale: int) -> Panel | None:
    """Fig. 5: the HR crop, then each model's crop with its PSNR, from the visual rows at ``scale``."""
    chosen, left = choose(ctx, "visual", scale)
    if not chosen:
        return None
    newest = max(chosen.values(), key=lambda r: (r["created_at"], r["uid"]))
    x, y, w, h = newest["metrics"]["box"]
    tiles, missing = _tiles(ctx, chosen, "crop_png", lambda m: f"{m['crop_psnr']:.2f}")
    tiles.insert(0, Tile("HR", newest["metrics"].get("hr_crop_png") or "", "PSNR (dB)"))
    caption = (
        f"Visual comparison on {newest['dataset']} ×{scale}: the {w}×{h} box at x={x}, y={y} (top-left, HR "
        f"pixels); under each crop its PSNR (dB; Y channel, {scale} pixels shaved per edge)."
    )
    notes = [f"No crop file for: {', '.join(missing)} (run lmfn-bench visuals again)."] if missing else []
    if left:
        notes.append(f"{left} other crop(s) at ×{scale} (other images or boxes) not shown.")
    return Panel("fig5", "Fig. 5.", caption, tiles, notes)


def di_cells(ctx: Context, scales: tuple[int, ...]) -> tuple[dict[tuple[str, int], dict], list[str]]:
    """Table 3's DI cell ({column: cell}) by (key, scale) from Fig. 6's choice at each scale, and one note
    per scale."""
    cells: dict[tuple[str, int], dict] = {}
    notes = []
    for scale in scales:
        chosen, _ = choose(ctx, "lam", scale)
        for key, r in chosen.items():
            cells[(key, scale)] = {("", DI): (float(r["metrics"]["di"]), "", ctx.prov.add(r))}
        if chosen:
            first = next(iter(chosen.values()))
            notes.append(f"DI at ×{scale}: LAM diffusion index on {first['dataset']}, {lam_settings(first)}.")
    return cells, notes
