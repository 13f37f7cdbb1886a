"""Metrics against algebra and against the two protocols' definitions."""

from __future__ import annotations

import numpy as np
import pytest

from harness.metrics import psnr, psnr_ssim, ssim, to_uint8, y_channel


def test_psnr_closed_form() -> None:
    a = np.zeros((10, 10))
    b = np.full((10, 10), 5.0)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 25))
    assert psnr(a, a) == float("inf")


def test_ssim_identity_and_constant_shift() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 255, (40, 40))
    assert ssim(a, a) == pytest.approx(1.0)
    # a constant offset d changes only the luminance term: (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)
    c = np.full((30, 30), 100.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(c, c + 10) == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_skimage_gaussian_variant() -> None:
    # second implementation: scikit-image with Wang et al.'s settings (Gaussian 1.5, population covariance)
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    a = rng.uniform(0, 255, (48, 52))
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255)
    ref = structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=11
    )
    # skimage averages over the 'valid' region after cropping (win_size-1)//2 = 5 per edge: same as ours
    assert ssim(a, b) == pytest.approx(ref, abs=1e-9)


def _ssim_by_fftconvolve(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook form of the protocol's SSIM: five maps, each filtered with the full 11x11 window by
    scipy.signal.fftconvolve (what the reproduction numbers were first measured with)."""
    from scipy.signal import fftconvolve

    ax = np.arange(11, dtype=np.float64) - 5
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    g /= g.sum()
    win = np.outer(g, g)

    def filt(x: np.ndarray) -> np.ndarray:
        return fftconvolve(x, win, mode="valid")

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a, var_b, cov = filt(a * a) - mu_a**2, filt(b * b) - mu_b**2, filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    return float(np.mean(num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))))


@pytest.mark.parametrize("shape", [(11, 11), (12, 37), (74, 30), (75, 30), (97, 64), (131, 257), (480, 500)])
@pytest.mark.parametrize("noise", [0.5, 8.0, 60.0])
def test_ssim_equals_the_textbook_form(shape: tuple[int, int], noise: float) -> None:
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    a = 16 + rng.uniform(0, 219, shape)  # unrounded, as the basicsr protocol's Y is
    b = np.clip(a + rng.normal(0, noise, shape), 16, 235)
    # 74 / 75 rows: one strip of 64 valid rows exactly, and one more row (harness.metrics.SSIM_STRIP_ROWS).
    # Strips, separable passes and the fused E[a^2 + b^2] map change only float rounding: 1e-13 is ~1000x that,
    # and a billion times below the 4th decimal a table prints
    assert ssim(a, b) == pytest.approx(_ssim_by_fftconvolve(a, b), abs=1e-13)


@pytest.mark.parametrize("shape", [(10, 40), (40, 10), (8, 8)])
def test_ssim_refuses_images_smaller_than_its_window(shape: tuple[int, int]) -> None:
    # no whole 11x11 window: a mean over nothing must not come back as a score
    a = np.random.default_rng(0).uniform(0, 255, shape)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(a, a)


def test_y_channel_bt601() -> None:
    white = np.full((2, 2, 3), 255, np.uint8)
    black = np.zeros((2, 2, 3), np.uint8)
    np.testing.assert_allclose(y_channel(white), 235.0)
    np.testing.assert_allclose(y_channel(black), 16.0)
    px = np.array([[[10, 200, 30]]], np.uint8)
    expected = 16 + (65.481 * 10 + 128.553 * 200 + 24.966 * 30) / 255
    assert y_channel(px)[0, 0] == pytest.approx(expected)
    assert y_channel(px, "matlab")[0, 0] == round(expected)


def test_gray_protocols_differ_as_documented() -> None:
    g = np.array([[0, 128, 255]], np.uint8)
    np.testing.assert_allclose(
        y_channel(g, "basicsr"), 16 + 219 * g.astype(float) / 255
    )  # three equal channels
    np.testing.assert_allclose(y_channel(g, "matlab"), g)  # its own values


def test_to_uint8_clamps_and_rounds() -> None:
    x = np.array([-0.5, 0.0, 0.5 / 255, 1.49 / 255, 1.0, 2.0])
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 0, 1, 255, 255])


def test_psnr_ssim_crops_hr_and_shaves_border() -> None:
    rng = np.random.default_rng(3)
    hr = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    sr = hr[:48, :48].astype(np.float64) / 255
    sr[:4, :] = 0  # damage only inside the shaved border
    p, s = psnr_ssim(sr, hr, 4)
    assert p == float("inf") and s == pytest.approx(1.0)
