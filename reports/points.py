"""Fig. 1's points (PSNR vs FLOPs, marker area = params, GPU runtime in the label where measured) and the
models Table 3 and Fig. 1 share; pure, like the tables."""

from __future__ import annotations

import math

import pandas as pd

from reports.context import Context
from reports.schema import FLOPS, PARAMS, PSNR

__all__ = ["figure_points", "table3_models"]


def table3_models(ctx: Context) -> list[str]:
    """Keys of every model Table 3 shows: any non-ablation model with a result, plus LMFN."""
    keys = set(ctx.evals.index.get_level_values(0)) | set(ctx.profiles.index.get_level_values(0))
    lmfn = ctx.inputs.lmfn
    return sorted(k for k in keys if k == lmfn or ctx.info(k) is None or ctx.info(k).family != "lmfn")



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
                    "runtime_ms": ctx.runtimes.ms.get((k, scale), math.nan),
                }
            )
        elif ds:
            missing.append(label + (" (no FLOPs)" if metric else f" (no {ds} ×{scale})"))
    if missing:
        notes.append(f"Not plotted: {', '.join(missing)}.")
    ctx.reset_marks()  # the figure has no footnotes: drop the marks its cells collected
    cols = ["label", "flops_g", "params_k", "psnr", "highlight", "runtime_ms"]
    caption = f"PSNR on {ds or dataset} ×{scale} against FLOPs (1280×720 output); marker area ∝ parameters."
    if ds and ds != dataset:  # the paper plots Manga109 ×4: say which set this one is instead
        caption += f" (The paper plots {dataset} ×{scale}, which is not in the store.)"
    if any((k, scale) in ctx.runtimes.ms for k in keys):
        caption += f" Labels carry the fp32 batch-1 runtime on {ctx.runtimes.device} where measured."
    return pd.DataFrame(pts, columns=cols), caption, notes
