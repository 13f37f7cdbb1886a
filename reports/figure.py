"""Fig. 1: PSNR against FLOPs, marker area by parameters (with a size legend), every point labelled, LMFN
highlighted.

Labels are placed by adjustText and then checked on the rendered figure: any label that still touches another
label or any marker is moved to the nearest free spot around its own marker (a greedy search in display
space), so no two labels overlap and no label covers a marker however close the models sit. A label away from
its marker gets a thin leader line to it.

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot): PNG goes through the Agg canvas and PDF through the
PDF backend, so it runs headless and never touches global pyplot state.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from adjustText import adjust_text
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

HIGHLIGHT, OTHER = "#d62728", "#4c72b0"
SIZES = (40, 700)  # marker area range in points^2
PAD = 2.0  # points between a label and anything it must not touch
META = {"pdf": {"CreationDate": None, "Creator": "lmfn-bench"}, "png": {"Software": "lmfn-bench"}}


def areas(params_k: pd.Series | np.ndarray, top: float) -> np.ndarray:
    """Marker area (points^2) per point: linear in params from 0 up to ``top`` (the largest model)."""
    return SIZES[0] + (SIZES[1] - SIZES[0]) * np.asarray(params_k, float) / max(top, 1.0)


def marker_boxes(ax: Axes, x: np.ndarray, y: np.ndarray, area: np.ndarray) -> list[Bbox]:
    """Display-space squares around each circular marker (diameter sqrt(area) points)."""
    px = ax.figure.dpi / 72.0
    centres = ax.transData.transform(np.column_stack([x, y]))
    half = np.sqrt(area) / 2 * px
    return [
        Bbox.from_extents(cx - h, cy - h, cx + h, cy + h) for (cx, cy), h in zip(centres, half, strict=True)
    ]


def _hits(box: Bbox, others: list[Bbox]) -> bool:
    return any(box.overlaps(o) for o in others)


def _free_spot(ax: Axes, text: Text, marker: Bbox, avoid: list[Bbox], renderer) -> None:
    """Move ``text`` to the first spot around ``marker`` (8 directions, growing rings) clear of ``avoid`` and
    inside the axes; leaves it where it is if none is found."""
    pad = PAD * ax.figure.dpi / 72.0
    box = text.get_window_extent(renderer)
    w, h = box.width, box.height
    inside = ax.get_window_extent(renderer)
    cx, cy = (marker.x0 + marker.x1) / 2, (marker.y0 + marker.y1) / 2
    r = marker.width / 2 + pad
    for ring in range(40):
        d = r + ring * h * 0.6
        for ux, uy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)):
            x0 = cx + ux * d - (w if ux < 0 else 0 if ux > 0 else w / 2)
            y0 = cy + uy * d - (h if uy < 0 else 0 if uy > 0 else h / 2)
            cand = Bbox.from_bounds(x0, y0, w, h)
            grown = cand.expanded((w + 2 * pad) / w, (h + 2 * pad) / h)
            if inside.containsx(cand.x0) and inside.containsx(cand.x1) and inside.containsy(cand.y0) \
                    and inside.containsy(cand.y1) and not _hits(grown, avoid):  # fmt: skip
                text.set_ha("left")
                text.set_va("bottom")
                text.set_position(ax.transData.inverted().transform((x0, y0)))
                return


def _place_labels(ax: Axes, texts: list[Text], markers: list[Bbox], xy: np.ndarray) -> None:
    """adjustText first (deterministic: numpy's global RNG is seeded and restored), then a repair pass."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        adjust_text(texts, objects=markers, ax=ax, expand=(1.15, 1.3), ensure_inside_axes=True, iter_lim=500)
    finally:
        np.random.set_state(state)
    renderer = ax.figure.canvas.get_renderer()
    placed: list[Bbox] = []
    for t, own in zip(texts, markers, strict=True):
        if _hits(t.get_window_extent(renderer), placed + markers):
            _free_spot(ax, t, own, placed + markers, renderer)
        placed.append(t.get_window_extent(renderer))
    px = ax.figure.dpi / 72.0
    for t, (x, y), own in zip(texts, xy, markers, strict=True):
        box = t.get_window_extent(renderer)
        centre = own.corners().mean(axis=0)
        near = np.clip(centre, [box.x0, box.y0], [box.x1, box.y1])  # the label's point closest to the marker
        if math.dist(near, centre) > own.width / 2 + 4 * px:  # not touching its marker: a leader line to it
            ax.annotate("", (x, y), xytext=ax.transData.inverted().transform(near), zorder=0.5,
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.45", "shrinkA": 0,
                                    "shrinkB": own.width / 2 / px})  # fmt: skip


def _size_legend(fig: Figure, top: float) -> None:
    """Marker area legend: three round parameter counts spanning the plotted range."""
    step = 10 ** math.floor(math.log10(max(top, 1.0)))
    values = sorted({max(step, round(top * f / step) * step) for f in (0.25, 0.5, 1.0)})
    handles = [  # proxies outside the axes: a marker of diameter sqrt(area) points is the scatter's circle
        Line2D([], [], ls="", marker="o", markersize=math.sqrt(areas(np.array([v]), top)[0]), color=OTHER,
               alpha=0.65, markeredgecolor="black", markeredgewidth=0.6)
        for v in values
    ]  # fmt: skip
    fig.legend(
        handles, [f"{v:,.0f}K" for v in values], title="Params", loc="outside right center", frameon=False,
        labelspacing=1.6, borderpad=1.0, fontsize=8, title_fontsize=8,
    )  # fmt: skip


def _label(point) -> str:
    """The model's name, and its GPU runtime below it where one was measured (``runtime_ms``, optional)."""
    ms = getattr(point, "runtime_ms", math.nan)
    return point.label if ms is None or math.isnan(ms) else f"{point.label}\n{ms:.1f} ms"


def draw(points: pd.DataFrame, title: str = "") -> Figure:
    """The trade-off scatter for ``points`` (columns label, flops_g, params_k, psnr, highlight; runtime_ms
    optional: the GPU runtime shown under the label)."""
    fig = Figure(figsize=(7.2, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    df = points.reset_index(drop=True)
    top = float(df["params_k"].max()) if len(df) else 1.0
    area = areas(df["params_k"], top)
    colours = [HIGHLIGHT if h else OTHER for h in df["highlight"]]
    ax.scatter(df["flops_g"], df["psnr"], s=area, c=colours, alpha=0.65, edgecolors="black", linewidths=0.6)
    ax.set_xlabel("FLOPs (G)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.18, y=0.2)  # room for the labels at the edges
    if title:
        ax.set_title(title, fontsize=9)
    _size_legend(fig, top)
    fig.canvas.draw()  # fixes the layout, so display coordinates below are final
    fig.set_layout_engine("none")
    texts = [
        ax.text(r.flops_g, r.psnr, _label(r), fontsize=8, ha="center", va="center",
                color=HIGHLIGHT if r.highlight else "black", fontweight="bold" if r.highlight else "normal")
        for r in df.itertuples()
    ]  # fmt: skip
    xy = df[["flops_g", "psnr"]].to_numpy(float)
    if texts:
        _place_labels(ax, texts, marker_boxes(ax, xy[:, 0], xy[:, 1], area), xy)
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``fig`` as ``stem``.png and ``stem``.pdf (reproducible metadata); returns the paths."""
    paths = []
    for ext in ("png", "pdf"):
        p = stem.with_suffix(f".{ext}")
        fig.savefig(p, dpi=200, metadata=META[ext])
        paths.append(p)
    return paths


def save(points: pd.DataFrame, stem: Path, title: str = "") -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf; returns the paths."""
    return save_figure(draw(points, title), stem)
