"""Fig. 1: PSNR against FLOPs, marker area by parameters, every point labelled, LMFN highlighted.

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot): PNG goes through the Agg canvas and PDF through the
PDF backend, so it runs headless and never touches global pyplot state.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

HIGHLIGHT, OTHER = "#d62728", "#4c72b0"
SIZES = (40, 700)  # marker area range in points^2
_META = {"pdf": {"CreationDate": None, "Creator": "lmfn-bench"}, "png": {"Software": "lmfn-bench"}}


def _label_offsets(df: pd.DataFrame, near: float = 0.07) -> list[tuple[float, float]]:
    """Label offsets (points): upper right, or away from an earlier point that sits close by."""
    span = lambda c: (df[c].max() - df[c].min()) or 1.0  # noqa: E731
    xy = list(zip(df["flops_g"] / span("flops_g"), df["psnr"] / span("psnr"), strict=True))
    taken: list[tuple[float, float, tuple[int, int]]] = []
    out = []
    for (x, y), area in zip(xy, _areas(df["params_k"]), strict=True):
        close = [
            (abs(px - x) + abs(py - y), px, c)
            for px, py, c in taken
            if abs(px - x) < near and abs(py - y) < near
        ]
        side = -1 if close and min(close)[1] > x else 1  # the nearest neighbour's side is the crowded one
        options = [(side, 1), (side, -1), (-side, 1), (-side, -1)]
        corner = next((o for o in options if o not in {c for *_, c in close}), options[0])
        taken.append((x, y, corner))
        step = 0.35 * math.sqrt(area) + 2  # clear of the marker's edge (area in points^2)
        out.append((corner[0] * step, corner[1] * step))
    return out


def _areas(params_k: pd.Series) -> pd.Series:
    """Marker area (points^2) per point: linear in params from 0, as the scatter's size mapping."""
    return SIZES[0] + (SIZES[1] - SIZES[0]) * params_k / max(params_k.max(), 1.0)


def draw(points: pd.DataFrame, title: str = "") -> Figure:
    """The trade-off scatter for ``points`` (columns label, flops_g, params_k, psnr, highlight)."""
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    df = points.assign(group=points["highlight"].map({True: "LMFN", False: "others"}))
    sns.scatterplot(
        data=df,
        x="flops_g",
        y="psnr",
        size="params_k",
        sizes=SIZES,
        size_norm=(0, max(df["params_k"].max(), 1)),
        hue="group",
        palette={"LMFN": HIGHLIGHT, "others": OTHER},
        hue_order=["others", "LMFN"],
        alpha=0.65,
        edgecolor="black",
        linewidth=0.6,
        legend=False,
        ax=ax,
    )
    for r, (dx, dy) in zip(df.itertuples(), _label_offsets(df), strict=True):
        ax.annotate(
            r.label,
            (r.flops_g, r.psnr),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=8,
            ha="left" if dx > 0 else "right",
            va="bottom" if dy > 0 else "top",
            color=HIGHLIGHT if r.highlight else "black",
            fontweight="bold" if r.highlight else "normal",
        )
    ax.set_xlabel("FLOPs (G)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.15, y=0.15)  # room for the labels at the edges
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def save(points: pd.DataFrame, stem: Path, title: str = "") -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf; returns the paths."""
    fig = draw(points, title)
    paths = []
    for ext in ("png", "pdf"):
        p = stem.with_suffix(f".{ext}")
        fig.savefig(p, dpi=200, metadata=_META[ext])
        paths.append(p)
    return paths
