"""Both evaluation schedules give the serial loop's numbers exactly, in image order, and stop at a bad image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import harness.evaluate as ev
from harness import zoo
from harness.data import benchmark_pairs
from harness.errors import DataError
from harness.metrics import psnr_ssim


def _serial(model: torch.nn.Module, dataset: str, scale: int, data_root: Path | None = None) -> list[dict]:
    """The plain loop, one thread per forward (what each image in flight gets on a 2-thread run)."""
    torch.set_num_threads(1)
    rows = []
    for pair in benchmark_pairs(dataset, scale, data_root):
        p, s = psnr_ssim(ev.super_resolve(model, pair.lr, scale), pair.hr, scale)
        rows.append({"image": pair.name, "psnr": p, "ssim": s})
    return rows


@pytest.mark.parametrize("threads", [1, 2])  # _pipelined / _images_in_flight
def test_rows_equal_the_serial_loop(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMFN_BENCH_DATA", raising=False)
    torch.manual_seed(0)
    model = zoo.create("lkdn", 3).eval()  # a real network: its forward depends on the threads it gets
    serial = _serial(model, "Default", 3)
    torch.set_num_threads(threads)
    ticks: list[tuple[int, int, str]] = []
    res = ev.evaluate_model(model, "Default", 3, on_image=lambda i, n, name: ticks.append((i, n, name)))
    assert torch.get_num_threads() == threads  # the workers' share is not left behind
    assert res.per_image == serial  # exact floats, image order (images in flight start largest first)
    assert res.psnr == float(np.mean([r["psnr"] for r in serial]))
    assert ticks == [(i + 1, len(serial), r["image"]) for i, r in enumerate(serial)]


def _tiny_set(root: Path, n: int) -> Path:
    hr = root / "benchmark" / "Set5" / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 44, 3), dtype=np.uint8)).save(hr / f"img{i}.png")
    return hr


@pytest.mark.parametrize("threads", [1, 2])
def test_a_corrupt_image_stops_the_set_naming_it(threads: int, tmp_path: Path) -> None:
    hr = _tiny_set(tmp_path, 6)
    (hr / "img3.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    torch.set_num_threads(threads)
    seen: list[str] = []
    with pytest.raises(DataError, match="img3.png"):
        ev.evaluate_model(zoo.create("bicubic", 2), "Set5", 2, tmp_path, on_image=lambda i, n, name: seen.append(name))
    assert seen == ["img0", "img1", "img2"][: len(seen)]  # only rows before it, in order (the last may be unscored)
    assert torch.get_num_threads() == threads


def test_images_in_flight_keep_order_with_uneven_sizes(tmp_path: Path) -> None:
    _tiny_set(tmp_path, 7)  # growing sizes: the largest-first schedule runs them in reverse
    model = zoo.create("bicubic", 2)
    serial = _serial(model, "Set5", 2, tmp_path)
    torch.set_num_threads(3)
    res = ev.evaluate_model(model, "Set5", 2, tmp_path)
    assert [r["image"] for r in res.per_image] == [f"img{i}" for i in range(7)]
    assert res.per_image == serial
