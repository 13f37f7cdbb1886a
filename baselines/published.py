"""Published numbers (baselines/published.csv): facts with their source and the protocol each paper used."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

CSV_PATH = Path(__file__).with_name("published.csv")
DATASETS = ("set5", "set14", "b100", "urban100", "manga109")


def _num(v: str) -> float | None:
    return float(v) if v.strip() else None


@lru_cache(maxsize=1)
def published_rows() -> tuple[dict, ...]:
    """Every row of the CSV with numbers parsed (empty cells are None)."""
    out = []
    with open(CSV_PATH, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            row: dict = {
                "model": r["model"],
                "scale": int(r["scale"]),
                "protocol": r["protocol"],
                "protocol_note": r["protocol_note"],
                "source": r["source"],
            }
            for k in ("params_k", "flops_g", *(f"{d}_{m}" for d in DATASETS for m in ("psnr", "ssim"))):
                row[k] = _num(r[k])
            out.append(row)
    return tuple(out)


def published(model: str, scale: int) -> dict | None:
    """The published row of ``model`` (paper name, case-insensitive) at ``scale``, or None."""
    key = model.lower()
    for r in published_rows():
        if r["model"].lower() == key and r["scale"] == scale:
            return r
    return None


def published_metric(model: str, scale: int, dataset: str) -> tuple[float, float] | None:
    """(PSNR, SSIM) published for ``model`` x``scale`` on ``dataset`` (e.g. "Set5"), or None."""
    r = published(model, scale)
    if r is None:
        return None
    p, s = r.get(f"{dataset.lower()}_psnr"), r.get(f"{dataset.lower()}_ssim")
    return None if p is None else (p, s)
