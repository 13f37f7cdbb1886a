"""LAM and the diffusion index (harness.lam) against algebra, a second implementation and the official code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from torch import nn
from typer.testing import CliRunner

from harness.cli import app
from harness.lam import (
    GINI_SHIFT,
    LamSettings,
    _filter,
    blur_path,
    compute_lam,
    gaussian_kernel,
    gini,
    lam_images,
    path_attribution,
    window_gradient_magnitude,
)
from harness.lam_tasks import LamOptions, image_dataset, lam_matrix
from harness.store import Store
from harness.tasks import Job

runner = CliRunner()


def factory(scale: int) -> nn.Module:
    """A tiny non-linear SR network (the CLI tests' user model)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.GELU(),
        nn.Conv2d(8, 3 * scale**2, 3, padding=1),
        nn.PixelShuffle(scale),
    )


def _lr(h: int = 12, w: int = 14, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((3, h, w), dtype=np.float32))


# ----------------------------------------------------------------------------------------------------------
# Gini and the target


def test_gini_of_a_uniform_array_is_zero() -> None:
    assert gini(np.full(200, 0.37)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 10, 1000])
def test_gini_of_one_nonzero_is_1_minus_1_over_n_after_the_shift(n: int) -> None:
    # after the shift: n-1 values eps and one 1 + eps, sorted; sum((2i - n - 1) v_i) = eps * 0 + (n - 1) and
    # n * sum(v) = n (1 + n eps), so G = (n - 1) / (n (1 + n eps)) -> 1 - 1/n as eps -> 0
    a = np.zeros(n)
    a[n // 3] = 1.0
    eps = GINI_SHIFT
    assert gini(a) == pytest.approx((n - 1) / (n * (1 + n * eps)), rel=1e-12)
    assert gini(a) == pytest.approx(1 - 1 / n, abs=n * eps)


def test_gini_shifts_negative_values_like_the_official_code() -> None:
    # the official gini subtracts the minimum when it is negative: [-1, 0, 1] is [0, 1, 2]
    assert gini(np.array([-1.0, 0.0, 1.0])) == pytest.approx(gini(np.array([0.0, 1.0, 2.0])), rel=1e-12)


def test_window_gradient_magnitude_of_a_ramp() -> None:
    # sr = a*row + b*col: every forward difference is (a, b), so each window pixel adds sqrt(a^2 + b^2)
    a, b, win = 0.3, -0.4, 5
    rows, cols = torch.meshgrid(torch.arange(20.0), torch.arange(24.0), indexing="ij")
    sr = (a * rows + b * cols).expand(2, 3, 20, 24)
    got = window_gradient_magnitude(sr, x=7, y=3, window=win)
    assert got.item() == pytest.approx(2 * 3 * win * win * 0.5, rel=1e-5)


# ----------------------------------------------------------------------------------------------------------
# the blur path


def test_gaussian_kernel_is_normalised_symmetric_and_a_delta_at_sigma_zero() -> None:
    k = gaussian_kernel(9, 1.2)
    assert k.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.array_equal(k, k.T) and np.array_equal(k, k[::-1, ::-1])
    delta = np.zeros((9, 9))
    delta[4, 4] = 1.0
    assert np.array_equal(gaussian_kernel(9, 0.0), delta)


def test_filter_matches_scipy_with_mirrored_borders() -> None:
    # cv2.filter2D's default border (reflect without repeating the edge) is scipy's "mirror"
    img, k = _lr(), gaussian_kernel(9, 0.8)
    ours = _filter(img, k[None])[0].numpy()
    for c in range(3):
        ref = ndimage.correlate(img[c].double().numpy(), k, mode="mirror")
        np.testing.assert_allclose(ours[c], ref, rtol=0, atol=1e-12)


def test_blur_path_ends_at_the_lr_image_and_starts_one_step_below_sigma() -> None:
    lr, sigma, fold = _lr(), 1.2, 10
    images, derivs = blur_path(lr, sigma, fold, 9)
    assert images.shape == derivs.shape == (fold, 3, 12, 14)
    assert torch.equal(images[-1], lr)  # sigma -> 0: the delta kernel
    first = _filter(lr, gaussian_kernel(9, sigma * (fold - 1) / fold)[None])[0].float()
    torch.testing.assert_close(images[0], first, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------
# the path integral


def _linear_net(scale: int = 2) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 3 * scale**2, 3, padding=1), nn.PixelShuffle(scale)).eval()


def test_completeness_for_a_linear_network_and_a_linear_target() -> None:
    # for T(f(.)) linear the gradient is one constant g; the derivatives telescope:
    # mean_i g . fold (K_{i+1} - K_i) * lr = g . (K_fold - K_0) * lr = T(f(lr)) - T(f(blur_sigma(lr)))
    net, lr, sigma, fold = _linear_net(), _lr(), 1.2, 20
    weights = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 6, 6)).astype(np.float32))

    def target(sr: torch.Tensor) -> torch.Tensor:
        return (sr[:, :, 5:11, 4:10] * weights).sum()

    images, derivs = blur_path(lr, sigma, fold, 9)
    attribution = path_attribution(net, images, derivs, target, chunk=7)
    baseline = torch.stack(
        [
            torch.from_numpy(ndimage.correlate(c.double().numpy(), gaussian_kernel(9, sigma), mode="mirror"))
            for c in lr
        ]
    ).float()
    with torch.no_grad():
        expected = target(net(lr[None])) - target(net(baseline[None]))
    assert attribution.sum().item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)


def test_batched_path_equals_one_by_one() -> None:
    net, lr = factory(2).eval(), _lr(10, 11)
    images, derivs = blur_path(lr, 1.2, 9, 9)

    def target(sr: torch.Tensor) -> torch.Tensor:
        return window_gradient_magnitude(sr, 3, 4, 8)

    one_by_one = path_attribution(net, images, derivs, target, chunk=1)
    for chunk in (4, 9):
        batched = path_attribution(net, images, derivs, target, chunk=chunk)
        torch.testing.assert_close(batched, one_by_one, rtol=1e-5, atol=1e-6 * one_by_one.abs().max().item())


def test_compute_lam_chunks_give_the_same_di(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(img)
    hr, lr = lam_images(img, 2)
    assert hr.shape == (40, 48, 3) and lr.shape == (20, 24, 3)
    s = LamSettings(10, 12, window=8, fold=6)
    a = compute_lam(factory(2), hr, lr, 2, s, chunk=1)
    b = compute_lam(factory(2), hr, lr, 2, s, chunk=6)
    assert 0 < a.di < 100 and a.map.max() == 1.0
    assert b.di == pytest.approx(a.di, abs=1e-6)


@pytest.mark.slow
def test_official_lam_di_of_lkdn_x4_on_set14_comic(need_shared) -> None:
    # Source: the official LAM code, X-Lowlevel-Vision/LAM_Demo SaliencyModel/BackProp.py (commit 2646caee:
    # attribution_objective, GaussianBlurPath, Path_gradient, saliency_map_PG) and SaliencyModel/utils.py
    # (attr_grad, prepare_images, PIL2Tensor, grad_abs_norm, gini), copied to a scratch folder under /tmp and run
    # as the demo notebook does (window 16, sigma 1.2, fold 50, l 9, PIL bicubic LR, CPU) on our LKDN with the
    # official LKDN_x4.pth, Set14 comic.png, w=120 (column), h=160 (row), on 2026-12-02. Only change to it:
    # Path_gradient appends result.detach().numpy() (torch 2.x refuses np.asarray on a tensor needing grad),
    # which touches the returned SR image, not the map. It printed Gini 0.9530966099387184, DI 4.690339006128164.
    from harness import zoo

    img = need_shared("data/benchmark/Set14/HR/comic.png")
    model = zoo.create("lkdn", 4, weights_dir=need_shared("weights"), require_weights=True)
    hr, lr = lam_images(img, 4)
    res = compute_lam(model, hr, lr, 4, LamSettings(120, 160))
    assert res.di == pytest.approx(4.690339006128164, abs=1e-3)
    assert res.gini == pytest.approx(0.9530966099387184, abs=1e-5)


# ----------------------------------------------------------------------------------------------------------
# orchestration and the command


def _image(tmp_path: Path, name: str = "img.png", size: tuple[int, int] = (40, 48)) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def _ckpt(tmp_path: Path) -> Path:
    """The user model's weights as a file: LAM of random weights is refused like eval's."""
    path = tmp_path / "factory_x2.pth"
    torch.save(factory(2).state_dict(), path)
    return path


def test_image_dataset_names_the_benchmark_set(tmp_path: Path) -> None:
    assert image_dataset(_image(tmp_path / "benchmark" / "Set14" / "HR", "comic.png")) == "Set14/comic"
    assert image_dataset(_image(tmp_path / "Urban100", "img_001.png")) == "Urban100/img_001"
    assert image_dataset(_image(tmp_path / "mine", "shot.png")) == "shot"


def test_lam_matrix_skips_what_the_store_has_and_keys_on_settings(tmp_path: Path) -> None:
    img, store = _image(tmp_path), tmp_path / "r.db"
    job = [Job(f"{__name__}:factory", 2, _ckpt(tmp_path))]
    opts = LamOptions(img, LamSettings(8, 8, window=8, fold=3), out_dir=None)
    first = lam_matrix(job, opts, store=store, force=False)
    again = lam_matrix(job, opts, store=store, force=False)
    other = lam_matrix(
        job, LamOptions(img, LamSettings(8, 8, window=8, fold=4), None), store=store, force=False
    )
    assert len(first.rows) == 1 and again.skipped == 1 and not again.rows and len(other.rows) == 1
    rows = Store(store).rows()
    assert len(rows) == 2 and {r["device_key"] for r in rows} == {
        "x8y8w8|sigma1.2|fold3|k9|pil",
        "x8y8w8|sigma1.2|fold4|k9|pil",
    }


def _lam(tmp_path: Path, *args: str):
    return runner.invoke(
        app, ["lam", *args, "--store", str(tmp_path / "r.db"), "--out", str(tmp_path / "out")]
    )


def test_cli_json_row_and_pictures(tmp_path: Path) -> None:
    img = _image(tmp_path)
    res = _lam(tmp_path, "-m", f"{__name__}:factory", "--checkpoint", str(_ckpt(tmp_path)), "--image", str(img),
               "--x", "10", "--y", "12", "--window", "8", "--fold", "4", "--scale", "2", "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    settings = {"x": 10, "y": 12, "window": 8, "sigma": 1.2, "fold": 4, "kernel_size": 9, "lr_resize": "pil"}
    assert {**out, **settings} == out and out["model"] == f"{__name__}:factory" and out["scale"] == 2
    assert 0 < out["di"] < 100 and out["di"] == pytest.approx((1 - out["gini"]) * 100)
    (row,) = Store(tmp_path / "r.db").rows()
    assert row["kind"] == "lam" and row["dataset"] == "img" and row["psnr"] is None and row["protocol"] == ""
    assert (
        row["checkpoint_hash"]
        and row["metrics"]["di"] == out["di"]
        and row["device_key"] == "x10y12w8|sigma1.2|fold4|k9|pil"
    )
    assert {**row["extra"], **settings, "image": str(img.resolve())} == row["extra"]
    with Image.open(row["metrics"]["map_png"]) as m, Image.open(row["extra"]["panel_png"]) as p:
        assert m.size == (48, 40) and p.size == (3 * 48, 40)


def test_cli_several_models_are_all_run() -> None:
    # -m twice means both models (typer keeps only the last value of a plain str option)
    from harness.cli.lam import _jobs

    assert [(j.model, j.scale) for j in _jobs(["bicubic", "lkdn"], False, 4, None)] == [("bicubic", 4), ("lkdn", 4)]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--image", "MISSING", "--x", "1", "--y", "1"], "does not exist"),
        (["--image", "IMG", "--x", "40", "--y", "1"], "outside"),
        (["--image", "IMG", "--x", "1", "--y", "30"], "outside"),
        (["--image", "IMG", "--x", "1.5", "--y", "1"], "integer"),
        (["--image", "IMG", "--x", "1", "--y", "1", "--kernel-size", "8"], "odd"),
        (["--image", "IMG", "--x", "1", "--y", "1", "--lr-resize", "nearest"], "pil"),
        (["--image", "IMG"], "--x"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_no_row(tmp_path: Path, args: list[str], needle: str) -> None:
    img = _image(tmp_path)
    args = [str(tmp_path / "missing.png") if a == "MISSING" else str(img) if a == "IMG" else a for a in args]
    res = _lam(
        tmp_path, "-m", f"{__name__}:factory", "--checkpoint", str(_ckpt(tmp_path)), "--scale", "2", *args
    )
    _clean_failure(res, tmp_path, needle)


def test_cli_model_without_weights_and_no_model(tmp_path: Path) -> None:
    img = _image(tmp_path)
    _clean_failure(
        _lam(tmp_path, "-m", "lkdn", "--image", str(img), "--x", "1", "--y", "1"), tmp_path, "lkdn"
    )
    _clean_failure(_lam(tmp_path, "--image", str(img), "--x", "1", "--y", "1"), tmp_path, "--model")


def _clean_failure(res, tmp_path: Path, needle: str) -> None:
    text = res.stderr
    assert res.exit_code == 2, res.output
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert needle in text, text
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "out").exists()
