"""The pipelined evaluation gives the serial loop's numbers exactly, in image order, in both of its modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import harness.evaluate as ev
from harness import zoo
from harness.data import benchmark_pairs
from harness.metrics import psnr_ssim


@pytest.mark.parametrize("overlap", [True, False])  # scored beside the forward / between forwards
def test_pipelined_rows_equal_the_serial_loop(overlap: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMFN_BENCH_DATA", raising=False)
    monkeypatch.setattr(ev, "_cores", lambda: torch.get_num_threads() + (1 if overlap else 0))
    model = zoo.create("bicubic", 3)
    ticks: list[tuple[int, int, str]] = []
    res = ev.evaluate_model(model, "Default", 3, on_image=lambda i, n, name: ticks.append((i, n, name)))
    serial = []
    for pair in benchmark_pairs("Default", 3):
        p, s = psnr_ssim(ev.super_resolve(model, pair.lr, 3), pair.hr, 3)
        serial.append({"image": pair.name, "psnr": p, "ssim": s})
    assert res.per_image == serial  # exact floats, same order
    assert res.psnr == float(np.mean([r["psnr"] for r in serial]))
    assert ticks == [(i + 1, len(serial), r["image"]) for i, r in enumerate(serial)]
