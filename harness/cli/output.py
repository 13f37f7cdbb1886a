"""How commands print results: rich tables for people, one JSON object per line for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.cli.common import out
from harness.measure import format_ops
from harness.settings import SCALES

EVAL_JSON_KEYS = (
    "model", "variant", "scale", "dataset", "protocol", "psnr", "ssim", "n_images", "source", "checkpoint",
    "checkpoint_hash", "code_rev", "device", "versions", "created_at", "uid",
)  # fmt: skip


def no_checkpoint_line(names: list[str], weights_dir: Path | None, what: str = "evaluated") -> str:
    """The one line for models skipped for want of weights, saying where they were looked for."""
    where = (
        f"in the weights cache or {weights_dir}"
        if weights_dir
        else "(no --weights-dir; `lmfn-bench weights fetch` fills the cache)"
    )
    return f"not {what}, no checkpoint found {where}: {', '.join(names)}"


def json_line(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, allow_nan=False), flush=True)  # NaN is not JSON; the store refuses it anyway


def eval_json(row: dict) -> None:
    json_line({k: row.get(k) for k in EVAL_JSON_KEYS})


def eval_table(rows: list[dict]) -> None:
    table = Table()
    for col in ("model", "scale", "dataset", "protocol", "PSNR", "SSIM", "images", "source", "checkpoint"):
        table.add_column(col, justify="right" if col in ("PSNR", "SSIM", "images", "scale") else "left")
    for r in rows:
        table.add_row(
            r["model"], f"x{r['scale']}", r["dataset"], r["protocol"], f"{r['psnr']:.3f}", f"{r['ssim']:.4f}",
            str(r["n_images"]), r["source"], Path(r["checkpoint"]).name or "-",
        )  # fmt: skip
    out.print(table)


def profile_json(row: dict) -> None:
    json_line({"model": row["model"], "scale": row["scale"], **row["metrics"], "uid": row["uid"],
               "created_at": row["created_at"], "code_rev": row["code_rev"]})  # fmt: skip


def _giga(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e9:.2f}"


def profile_table(rows: list[dict]) -> None:
    table = Table()
    cols = ("model", "scale", "params", "FLOPs paper (G)", "fvcore", "full", "thop", "latency ms (p50/p90)",
            "uncounted (full)")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col in ("model", "uncounted (full)") else "right")
    for r in rows:
        m = r["metrics"]
        lat = f"{m['latency_ms_median']:.1f}/{m['latency_ms_p90']:.1f}" if "latency_ms_median" in m else "-"
        table.add_row(
            r["model"], f"x{r['scale']}", f"{m['params']:,}", _giga(m.get("flops_paper")),
            _giga(m.get("flops_fvcore")), _giga(m.get("flops_full")), _giga(m.get("flops_thop")), lat,
            format_ops(m.get("unsupported_full") or {}) or "-",
        )  # fmt: skip
    out.print(table)


def zoo_table(rows: list[dict], details: bool) -> None:
    table = Table(title="lmfn-bench model zoo")
    for col in ("model", "family", "scales"):
        table.add_column(col, no_wrap=True)
    if details:
        for s in SCALES:
            table.add_column(f"params x{s}", justify="right", no_wrap=True)
    else:
        table.add_column("official checkpoints (found by --weights-dir)")
    for r in rows:
        cells = [r["model"], r["family"], ",".join(map(str, r["scales"]))]
        if details:
            cells += [f"{r['params'][str(s)]:,}" if str(s) in r["params"] else "-" for s in SCALES]
        else:
            cells.append(" ".join(r["checkpoints"].values()) or "-")
        table.add_row(*cells)
    out.print(table)
