"""PSNR / SSIM on the Y channel, with the two protocols of the literature (see DESIGN.md, "Protocol").

``basicsr`` (default): what BasicSR-based papers (LKDN, VapSR, BSRN, SAFMN, LMFN) report. Y of ITU-R BT.601 from
RGB in [0, 1], left unrounded, in float64; a grayscale image is read as three equal channels (as cv2.imread does).
``matlab``: the older MATLAB scripts behind the bicubic rows of every paper: Y rounded to uint8 as ``rgb2ycbcr``
does on uint8 input; a grayscale image is compared on its own values.
Both: SR clamped, x255, rounded to uint8; ``scale`` pixels shaved per edge; PSNR on 255^2; SSIM of Wang et al.
(11x11 Gaussian, sigma 1.5, K1 = 0.01, K2 = 0.03, population covariance, valid window).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import fft as sp_fft

from harness.errors import UsageError
from harness.settings import PROTOCOLS

_Y_COEFFS = np.array([65.481, 128.553, 24.966]) / 255.0


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def to_uint8(img: np.ndarray) -> np.ndarray:
    """A float image in [0, 1] (any range; clamped) to uint8 with rounding, as every SR evaluation does."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.round(np.clip(img, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def y_channel(img: np.ndarray, protocol: str = "basicsr") -> np.ndarray:
    """Y (16..235 range) in float64 from a uint8 HxW or HxWx3 RGB image."""
    check_protocol(protocol)
    x = img.astype(np.float64)
    if x.ndim == 2 or x.shape[2] == 1:
        x = x.reshape(x.shape[0], x.shape[1])
        if protocol == "matlab":
            return x  # MATLAB scripts compare a grayscale image on its own values
        y = 16.0 + x * _Y_COEFFS.sum()
    else:
        y = 16.0 + x[..., :3] @ _Y_COEFFS
    if protocol == "matlab":
        y = np.round(y)  # rgb2ycbcr on uint8 input returns uint8
    return y


def shave(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border > 0 else img


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


@lru_cache(maxsize=1)
def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


@lru_cache(maxsize=32)
def _window_spectrum(fshape: tuple[int, int]) -> np.ndarray:
    return sp_fft.rfftn(_gaussian_window(), fshape)


def _valid_filter(shape: tuple[int, int], workers: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """``fftconvolve(x, window, mode="valid")`` for images of ``shape``, the same operations in the same order
    (scipy 1.17's _freq_domain_conv + _apply_conv_mode), so bit-identical, with the window's spectrum made
    once per size instead of once per call (a third of the FFTs). ``workers`` threads share each FFT's 1-D
    transforms (each transform is computed as with one thread: the same bits)."""
    k = _gaussian_window().shape[0]
    full = (shape[0] + k - 1, shape[1] + k - 1)
    fshape = tuple(sp_fft.next_fast_len(n, True) for n in full)
    spec = _window_spectrum(fshape)
    vh, vw = shape[0] - k + 1, shape[1] - k + 1
    top, left = (full[0] - vh) // 2, (full[1] - vw) // 2  # scipy's _centered slice of the full result

    def filt(x: np.ndarray) -> np.ndarray:
        spectrum = sp_fft.rfftn(x, fshape, workers=workers) * spec
        return sp_fft.irfftn(spectrum, fshape, workers=workers)[top : top + vh, left : left + vw]

    return filt


def ssim(a: np.ndarray, b: np.ndarray, workers: int = 1) -> float:
    """Wang et al. SSIM of two single-channel images on the 0-255 range, valid-window mean (``workers``: FFT
    threads; the value does not depend on it)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    filt = _valid_filter(a.shape, workers)  # the window is symmetric: correlation == convolution
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def psnr_ssim(
    sr: np.ndarray, hr: np.ndarray, scale: int, protocol: str = "basicsr", workers: int = 1
) -> tuple[float, float]:
    """PSNR and SSIM of an SR image against its HR ground truth (both uint8 HxW[x3]; HR cropped to SR's size);
    ``workers``: FFT threads of the SSIM (same value for any count)."""
    sr, hr = to_uint8(sr), to_uint8(hr)
    if hr.shape[0] < sr.shape[0] or hr.shape[1] < sr.shape[1]:
        raise ValueError(f"SR image {sr.shape[:2]} is larger than its HR image {hr.shape[:2]}")
    hr = hr[: sr.shape[0], : sr.shape[1]]
    if protocol == "matlab" and (hr.ndim == 2 or hr.shape[2] == 1) and sr.ndim == 3 and sr.shape[2] == 3:
        # a grayscale ground truth: compare the network's (equal-channel) output as gray, on its own values
        sr = np.round(sr.astype(np.float64).mean(axis=2)).astype(np.uint8)
    ya = shave(y_channel(sr, protocol), scale)
    yb = shave(y_channel(hr, protocol), scale)
    return psnr(ya, yb), ssim(ya, yb, workers)
