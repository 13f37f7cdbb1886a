"""harness.visuals (Fig. 5's SR crops) on a tiny synthetic image: the cached SR PNGs are the models' outputs, and
each crop PSNR equals harness.metrics on crops this test cuts itself from HR and from an SR it computes
without the harness's inference path (the tiny model called directly; bicubic by the resize module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from harness.cli import app
from harness.data import make_lr
from harness.errors import UsageError
from harness.metrics import psnr, shave, y_channel
from harness.resize import imresize
from harness.store import Store
from harness.visuals import Box, make_visuals

SCALE = 2


def factory(scale: int) -> nn.Module:
    """A tiny fixed network: 3x3 conv to 3*s^2 channels (deterministic weights, frozen: no checkpoint needed)
    then PixelShuffle."""
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.rand(conv.weight.shape, generator=g) * 0.1)
        conv.bias.fill_(0.05)
    return nn.Sequential(conv, nn.PixelShuffle(scale)).requires_grad_(False)


def _data(root: Path) -> np.ndarray:
    """benchmark/Urban100/HR/img_001.png: a smooth colour image with some texture (42x38, not a multiple of 4)."""
    yy, xx = np.mgrid[0:38, 0:42]
    img = np.stack([xx * 5, yy * 6, (xx * yy) % 256], axis=2) + np.random.default_rng(0).integers(
        0, 30, (38, 42, 3)
    )
    img = np.clip(img, 0, 255).astype(np.uint8)
    hr_dir = root / "benchmark" / "Urban100" / "HR"
    hr_dir.mkdir(parents=True)
    Image.fromarray(img).save(hr_dir / "img_001.png")
    Image.fromarray(img[::-1].copy()).save(hr_dir / "img_002.png")  # not the first image: not the default
    return img


def _crop_psnr(sr: np.ndarray, hr: np.ndarray, box: Box) -> float:
    crop = lambda a: a[box.y : box.y + box.h, box.x : box.x + box.w]  # noqa: E731
    return psnr(shave(y_channel(crop(sr)), SCALE), shave(y_channel(crop(hr)), SCALE))


def test_crops_psnr_and_cache(tmp_path: Path) -> None:
    img = _data(tmp_path / "data")
    store = tmp_path / "out" / "results.db"
    store.parent.mkdir()
    user = f"{__name__}:factory"
    box = Box(6, 4, 20, 18)
    rows = make_visuals(["bicubic", user], store=store, box=box, scale=SCALE, data_root=tmp_path / "data")
    assert [r["model"] for r in rows] == ["bicubic", user] and {r["kind"] for r in rows} == {"visual"}
    assert {r["dataset"] for r in rows} == {"Urban100/img_001"}  # the first image of Urban100 by default

    hr = img[: 38 - 38 % SCALE, : 42 - 42 % SCALE]
    lr = make_lr(hr, SCALE)
    with torch.no_grad():  # the tiny model called directly, not through harness.evaluate
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
        net = factory(SCALE)(x)[0].permute(1, 2, 0).numpy()
    expected = {
        "bicubic": imresize(lr, float(SCALE)),  # MATLAB bicubic of uint8 input: rounded uint8
        user: np.clip(np.round(np.clip(net, 0, 1) * 255), 0, 255).astype(np.uint8),
    }
    for r in rows:
        m = r["metrics"]
        name = "bicubic" if r["model"] == "bicubic" else r["model"]
        sr_png = store.parent / "visuals" / name / f"x{SCALE}" / "Urban100" / "img_001.png"
        assert Path(m["png"]) == sr_png.resolve()
        sr = np.asarray(Image.open(sr_png))
        assert (
            np.abs(sr.astype(int) - expected[r["model"]].astype(int)).max() <= 1
        )  # float32 vs float64 paths
        assert m["box"] == [6, 4, 20, 18]
        assert m["crop_psnr"] == pytest.approx(_crop_psnr(sr, hr, box), abs=1e-9)
        assert np.array_equal(np.asarray(Image.open(m["crop_png"])), sr[4:22, 6:26])
        assert np.array_equal(np.asarray(Image.open(m["hr_crop_png"])), hr[4:22, 6:26])
    assert rows[0]["metrics"]["crop_psnr"] != rows[1]["metrics"]["crop_psnr"]
    assert len(Store(store).rows(kind="visual")) == 2

    # made once: a second run reuses the cached SR images (same weights), --force remakes them
    png = Path(rows[1]["metrics"]["png"])
    stamp = png.stat().st_mtime_ns
    again = make_visuals([user], store=store, box=box, scale=SCALE, data_root=tmp_path / "data")
    assert (
        png.stat().st_mtime_ns == stamp
        and again[1]["metrics"]["crop_psnr"] == rows[1]["metrics"]["crop_psnr"]
    )
    make_visuals([user], store=store, box=box, scale=SCALE, data_root=tmp_path / "data", force=True)
    assert png.stat().st_mtime_ns != stamp
    # a second box of the same image is a row of its own (the box is in the store key), not a replacement
    make_visuals([user], store=store, box=Box(0, 0, 8, 8), scale=SCALE, data_root=tmp_path / "data")
    boxes = sorted(r["metrics"]["box"] for r in Store(store).rows(kind="visual", model=user))
    assert boxes == [[0, 0, 8, 8], [6, 4, 20, 18]]


def test_default_box_and_bad_boxes(tmp_path: Path) -> None:
    _data(tmp_path / "data")
    store = tmp_path / "r.db"
    kw = {"store": store, "scale": SCALE, "data_root": tmp_path / "data", "image": "Urban100/img_002"}
    (row,) = make_visuals(["bicubic"], **kw)
    assert row["dataset"] == "Urban100/img_002"
    assert row["metrics"]["box"] == [2, 0, 38, 38]  # a centred square, as large as the 42x38 image allows
    with pytest.raises(UsageError, match="outside"):
        make_visuals(["bicubic"], box=Box(30, 0, 20, 20), **kw)
    with pytest.raises(UsageError, match="wider and taller than 4"):
        make_visuals(["bicubic"], box=Box(0, 0, 4, 10), **kw)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--box", "1,2,3"], "--box looks like x,y,w,h"),
        (["--image", "Urban100"], "--image looks like SET/NAME"),
        (["--image", "Urban100/nosuch"], "no image 'nosuch'"),
        (["-m", "lkdn"], "model 'lkdn' x2 has no checkpoint"),
        (["-m", "bicubic", "-m", "lkdn", "--checkpoint", "x.pth"], "--checkpoint belongs to one model"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    _data(tmp_path / "data")
    store = tmp_path / "r.db"
    res = CliRunner().invoke(
        app, ["visuals", "--scale", "2", "--data-root", str(tmp_path / "data"), "--store", str(store), *args]
    )
    text = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code == 2 and needle in text and "Traceback" not in text, text
    assert len([ln for ln in text.strip().splitlines() if ln.strip()]) == 1, text
    assert not store.exists()


def test_cli_prints_each_crop(tmp_path: Path) -> None:
    _data(tmp_path / "data")
    store = tmp_path / "r.db"
    res = CliRunner().invoke(app, ["visuals", "-s", "2", "--data-root", str(tmp_path / "data"), "--store",
                                   str(store), "--box", "4,4,16,16", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert '"model": "bicubic"' in res.output and '"box": [4, 4, 16, 16]' in res.output
    assert len(Store(store).rows(kind="visual")) == 1
