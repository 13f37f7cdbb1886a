"""GPU runtime for Table 3 and Fig. 1: the column efficient-SR papers read first (NTIRE ranks on it).

A runtime cell is the median latency of a batch-1 fp32 forward at the protocol's full input (1280x720 output),
timed with CUDA events, without channels_last or torch.compile: the plain deployment every paper reports.
CPU latency is left out of the table (it depends on threads and load far more than on the network). When the
store holds several GPUs, the one with the most such rows is shown and the caption names it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from reports.schema import RUNTIME

__all__ = ["RUNTIME", "Runtimes", "gpu_runtimes"]


def _plain_cuda_latency(row: dict) -> bool:
    m = row.get("metrics") or {}
    return (
        m.get("device") == "cuda"
        and m.get("dtype") == "fp32"
        and not m.get("channels_last")
        and not m.get("compile")
        and m.get("input", "hd720") == "hd720"
        and m.get("latency_ms_median") is not None
        and (m.get("latency_lr_h"), m.get("latency_lr_w")) == (m.get("lr_h"), m.get("lr_w"))
    )


@dataclass(frozen=True)
class Runtimes:
    device: str | None  # the GPU shown; None: no GPU latency in the store
    ms: dict[tuple[str, int], float]  # (key, scale) -> median ms, newest row per cell
    rows: dict[tuple[str, int], dict]  # the rows behind them (provenance)
    others: tuple[str, ...] = ()  # GPUs in the store that are not shown

    def caption(self) -> str:
        if self.device is None:
            return ""
        return f" Runtime: median of batch-1 fp32 forwards (CUDA events) on {self.device}."


def gpu_runtimes(rows: list[dict]) -> Runtimes:
    """The newest plain fp32 CUDA latency per (key, scale) of the most-measured GPU (see the module doc)."""
    cuda = [r for r in rows if r.get("kind") == "profile" and _plain_cuda_latency(r)]
    if not cuda:
        return Runtimes(None, {}, {})
    names = Counter(r["metrics"].get("device_name") or r.get("device") or "GPU" for r in cuda)
    device = names.most_common(1)[0][0]
    chosen = [r for r in cuda if (r["metrics"].get("device_name") or r.get("device") or "GPU") == device]
    df = pd.DataFrame({"key": [r["key"] for r in chosen], "scale": [r["scale"] for r in chosen],
                       "t": [(r["created_at"], r["uid"]) for r in chosen], "row": chosen})  # fmt: skip
    newest = df.sort_values("t").groupby(["key", "scale"]).tail(1)
    by_cell = {(k, int(s)): row for k, s, row in zip(newest["key"], newest["scale"], newest["row"], strict=True)}
    ms = {cell: float(row["metrics"]["latency_ms_median"]) for cell, row in by_cell.items()}
    return Runtimes(device, ms, by_cell, tuple(sorted(set(names) - {device})))
