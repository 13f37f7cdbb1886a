"""Figs. 5 and 6 as images: a panel's tiles side by side (six to a row), each PNG under its title and its number
under it; a tile whose file is missing or unreadable shows the number alone. Bare ``Figure`` as in
:mod:`reports.figure` (headless, no pyplot state); PNG and PDF written by :func:`reports.figure.save_figure`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from reports.figure import HIGHLIGHT, save_figure
from reports.schema import Panel

PER_ROW = 6
TILE_IN = 1.55  # inches per tile


def read_png(path: str) -> np.ndarray | None:
    """The image as uint8 RGB, or None where there is none to show."""
    if not path or not Path(path).is_file():
        return None
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        return None


def draw(panel: Panel) -> Figure:
    n = len(panel.tiles)
    cols = min(n, PER_ROW)
    rows = math.ceil(n / cols)
    images = [read_png(t.png) for t in panel.tiles]
    aspect = max((im.shape[1] / im.shape[0] for im in images if im is not None), default=1.0)
    fig = Figure(figsize=(cols * TILE_IN * min(aspect, 2.5), rows * (TILE_IN + 0.55)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, tile, img in zip(axes.flat, panel.tiles, images, strict=False):
        colour = HIGHLIGHT if tile.highlight else "black"
        weight = "bold" if tile.highlight else "normal"
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        if img is not None:
            ax.imshow(img, interpolation="nearest")
        else:
            ax.set_facecolor("#f0f0f0")
            ax.set_box_aspect(1 / aspect)  # the same shape as the images beside it
            ax.text(
                0.5,
                0.5,
                "no image",
                ha="center",
                va="center",
                fontsize=7,
                color="0.4",
                transform=ax.transAxes,
            )
        ax.set_title(tile.title, fontsize=8, color=colour, fontweight=weight)
        ax.set_xlabel(tile.value, fontsize=8, color=colour, fontweight=weight)
    return fig


def save(panel: Panel, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf of ``panel``; returns the paths."""
    return save_figure(draw(panel), stem)
