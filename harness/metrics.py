"""PSNR / SSIM on the Y channel, with the two protocols of the literature (see DESIGN.md, "Protocol").

``basicsr`` (default): what BasicSR-based papers (LKDN, VapSR, BSRN, SAFMN, LMFN) report. Y of ITU-R BT.601 from
RGB in [0, 1], left unrounded, in float64; a grayscale image is read as three equal channels (as cv2.imread does).
``matlab``: the older MATLAB scripts behind the bicubic rows of every paper: Y rounded to uint8 as ``rgb2ycbcr``
does on uint8 input; a grayscale image is compared on its own values.
Both: SR clamped, x255, rounded to uint8; ``scale`` pixels shaved per edge; PSNR on 255^2; SSIM of Wang et al.
(11x11 Gaussian, sigma 1.5, K1 = 0.01, K2 = 0.03, population covariance, valid window).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

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
def _gaussian_taps(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The 1-D factor of the protocol's 11x11 window: the window is the outer product of these taps."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


def _valid_gaussian(maps: np.ndarray) -> np.ndarray:
    """The window's weighted mean over every valid 11x11 window of each map in a (n, H, W) stack, as two 1-D
    passes (separable: 22 taps per pixel instead of 121, or of an FFT's 10 transforms; scipy.ndimage releases
    the GIL, so it runs beside a forward)."""
    g = _gaussian_taps()
    r = len(g) // 2
    rows = ndimage.correlate1d(maps, g, axis=2, mode="constant")[:, :, r:-r]
    return ndimage.correlate1d(rows, g, axis=1, mode="constant")[:, r:-r]


SSIM_STRIP_ROWS = 64  # valid rows per pass: a strip's float64 maps stay in cache (Set14: 1.7x faster)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. SSIM of two single-channel images on the 0-255 range, valid-window mean, computed in strips
    of ``SSIM_STRIP_ROWS`` valid rows (each strip reads its 10 extra rows; the mean is over the whole image)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    k = len(_gaussian_taps())
    rows, cols = a.shape[0] - k + 1, a.shape[1] - k + 1
    if rows < 1 or cols < 1:  # no whole window: an empty sum would read as SSIM 0
        raise ValueError(
            f"SSIM needs images of at least {k}x{k} pixels (after any border crop), got {a.shape[0]}x{a.shape[1]}"
        )
    total = 0.0
    for top in range(0, rows, SSIM_STRIP_ROWS):
        end = min(top + SSIM_STRIP_ROWS, rows) + k - 1
        total += float(_ssim_map(a[top:end], b[top:end]).sum())
    return total / (rows * cols)


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The SSIM map over the valid windows of ``a`` and ``b`` (float64).

    Four filtered maps instead of the textbook five: var_a + var_b is only ever used as a sum, so E[a^2] and
    E[b^2] are filtered as one map E[a^2 + b^2] (linearity: the same value up to float rounding, ~1e-16)."""
    maps = np.empty((4, *a.shape))
    maps[0], maps[1] = a, b
    np.multiply(a, a, out=maps[2])
    maps[2] += b * b
    np.multiply(a, b, out=maps[3])
    mu_a, mu_b, e_sq, e_ab = _valid_gaussian(maps)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_ab = mu_a * mu_b
    mu_sq = mu_a * mu_a
    mu_sq += mu_b * mu_b
    num = (2 * mu_ab + c1) * (2 * (e_ab - mu_ab) + c2)  # 2 cov + C2
    den = (mu_sq + c1) * (e_sq - mu_sq + c2)  # var_a + var_b + C2
    return num / den


def psnr_ssim(sr: np.ndarray, hr: np.ndarray, scale: int, protocol: str = "basicsr") -> tuple[float, float]:
    """PSNR and SSIM of an SR image against its HR ground truth (both uint8 HxW[x3]; HR cropped to SR's size)."""
    sr, hr = to_uint8(sr), to_uint8(hr)
    if hr.shape[0] < sr.shape[0] or hr.shape[1] < sr.shape[1]:
        raise ValueError(f"SR image {sr.shape[:2]} is larger than its HR image {hr.shape[:2]}")
    hr = hr[: sr.shape[0], : sr.shape[1]]
    if protocol == "matlab" and (hr.ndim == 2 or hr.shape[2] == 1) and sr.ndim == 3 and sr.shape[2] == 3:
        # a grayscale ground truth: compare the network's (equal-channel) output as gray, on its own values
        sr = np.round(sr.astype(np.float64).mean(axis=2)).astype(np.uint8)
    ya = shave(y_channel(sr, protocol), scale)
    yb = shave(y_channel(hr, protocol), scale)
    return psnr(ya, yb), ssim(ya, yb)
