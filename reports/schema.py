"""The plain data that crosses the layers of ``reports/``: what :mod:`reports.inputs` hands the table builder,
and what :mod:`reports.tables` hands :mod:`reports.render`.

Nothing here imports the harness (or ``lmfn`` / ``baselines``): the zoo's and the store's facts arrive as
values, so the tables, renderers and figure are pure functions of these objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

PARAMS, FLOPS, PSNR, SSIM = "Params (K)", "FLOPs (G)", "PSNR", "SSIM"
DELTA = "Δ PSNR vs LMFN"  # Tables 1-2 with grid rows: paired difference to LMFN with its interval
DIFF, SEEDS, IMAGES = "Δ PSNR", "Seeds", "Images"  # the Comparisons table
DI = "DI"  # Table 3: LAM diffusion index (Fig. 6's image and window), where lam rows exist
# shown precision; ranks compare these rounded values
RUNTIME = "Runtime (ms)"  # GPU, see reports.runtime
DIGITS = {PARAMS: 0, FLOPS: 1, RUNTIME: 2, PSNR: 2, SSIM: 4, DELTA: 2, DIFF: 2, SEEDS: 0, IMAGES: 0, DI: 2}
RANKED = (PSNR, SSIM)


@dataclass(frozen=True)
class ModelInfo:
    """What the tables know of one network (from the zoo); a key without one is shown under its own name."""

    label: str  # row label: the paper's name where the zoo has one, else the key
    family: str  # "bicubic" | "lmfn" | "baseline" | "user"
    protocol: str  # the protocol its paper's numbers were made under (preferred when rows disagree)
    published_name: str | None = None  # its row name among the published numbers


@dataclass(frozen=True)
class ReportInputs:
    """Everything the tables read: store rows, the catalogue, published rows and the paper's constants."""

    rows: tuple[dict, ...]  # eval, profile, visual and lam rows, each with "key": the network it measured
    catalogue: Mapping[str, ModelInfo]  # by key
    published: Mapping[tuple[str, int], dict]  # by (lower-case published name, scale); CSV text values
    store: str
    scales: tuple[int, ...]
    sets: tuple[str, ...]  # the paper's five, in Table 3 order (small to large)
    default_set: str  # the embedded set of a machine without benchmark data
    default_protocol: str  # numbers under any other protocol carry a mark
    lmfn: str  # LMFN's key
    patterns: tuple[tuple[str, str], ...]  # Table 1 rows: (cell pattern, key)
    schemes: tuple[tuple[str, str], ...]  # Table 2 rows: (IFF scheme, key)


@dataclass(frozen=True)
class StatsOptions:
    """How report intervals are made: confidence level, bootstrap resamples and the (fixed) bootstrap seed."""

    level: float = 0.95
    seed: int = 0
    n_resamples: int = 10_000


@dataclass
class ReportTable:
    key: str
    caption: str
    values: pd.DataFrame  # index (block, row label); columns (group, field); NaN = missing
    rank: pd.DataFrame
    marks: pd.DataFrame
    sources: pd.DataFrame  # provenance id per cell (a tuple of ids for a mean over seeds)
    row_kind: pd.Series  # "measured" | "published"
    notes: list[str] = field(default_factory=list)
    row_header: str = "Model"
    std: pd.DataFrame | None = None  # same shape: std over seeds (shown as "mean ± std"); NaN = none
    ci: pd.DataFrame | None = None  # same shape: (lo, hi) of a difference's interval; None = none


@dataclass(frozen=True)
class Tile:
    """One image of a figure panel: its title, the PNG to show ("" or a missing file: the text alone) and the
    number under it."""

    title: str
    png: str
    value: str
    highlight: bool = False


@dataclass
class Panel:
    """Fig. 5 (visual crops) or Fig. 6 (LAM maps): tiles side by side, a caption and notes."""

    key: str  # "fig5" | "fig6": the file stem and the section id
    title: str  # "Fig. 5."
    caption: str
    tiles: list[Tile]
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    tables: list[ReportTable]
    figure: pd.DataFrame  # one row per point: label, flops_g, params_k, psnr, highlight
    figure_caption: str
    figure_notes: list[str]
    provenance: pd.DataFrame
    store: str
    comparisons: ReportTable | None = None  # `report --compare A B`: paired differences, when asked for
    panels: list[Panel] = field(default_factory=list)  # Figs. 5 and 6 where visual / lam rows exist
