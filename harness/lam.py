"""Local Attribution Map (Gu & Dong, CVPR 2021) and its diffusion index, as the official LAM code computes them.

Reimplemented after X-Lowlevel-Vision/LAM_Demo (``SaliencyModel/BackProp.py``, ``SaliencyModel/utils.py``, the
demo notebook's settings): LR = PIL bicubic of the mod-cropped HR (``matlab``: our :mod:`harness.resize`);
path = the LR blurred by isotropic Gaussians whose sigma falls from ``sigma`` to 0 in ``fold`` steps (path image
i uses kernel i+1, its derivative the kernel difference i+1 - i times ``fold``; borders reflected as cv2's
default); target = the sum over the window of the SR output's gradient magnitude (``attr_grad``); attribution =
mean over the path of input gradient x path derivative; map = |sum over channels| / max; DI = (1 - Gini) x 100.
The official code runs the path images one by one; here they go through the model in batches (same numbers:
batch items never mix in an SR network in eval mode), ``chunk`` at a time so memory stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from harness.data import make_lr, modcrop, read_image, to_rgb
from harness.errors import NonFiniteResultError, UsageError

LR_RESIZES = ("pil", "matlab")
GINI_SHIFT = 1e-7  # the official gini's "values cannot be 0" shift
SIGMA_EPS = 1e-5  # the official kernel's sigma + epsilon: sigma 0 gives an exact delta
CHUNK_PIXELS = 2**15  # LR pixels per pass by default: LKDN keeps ~1.5 GB of activations for backward (measured)

Target = Callable[[torch.Tensor], torch.Tensor]  # SR batch -> scalar to attribute


@dataclass(frozen=True)
class LamSettings:
    """Everything that changes a DI (the official demo's defaults): window top-left ``x`` (column), ``y`` (row)
    and side in HR pixels, blur path, LR resize."""

    x: int
    y: int
    window: int = 16
    sigma: float = 1.2
    fold: int = 50
    kernel_size: int = 9
    lr_resize: str = "pil"

    def checked(self) -> LamSettings:
        for name in ("x", "y", "window", "fold", "kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise UsageError(f"--{name.replace('_', '-')} must be an integer, got {value!r}")
        if self.x < 0 or self.y < 0:
            raise UsageError(f"window position must be >= 0, got x={self.x}, y={self.y}")
        if self.window < 1 or self.fold < 1:
            raise UsageError(f"--window and --fold must be >= 1, got {self.window} and {self.fold}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            # the official kernel is centred only for odd sides
            raise UsageError(f"--kernel-size must be odd and >= 3, got {self.kernel_size}")
        if not (self.sigma > 0 and np.isfinite(self.sigma)):
            raise UsageError(f"--sigma must be a positive number, got {self.sigma}")
        if self.lr_resize not in LR_RESIZES:
            raise UsageError(f"--lr-resize must be one of {', '.join(LR_RESIZES)}, got '{self.lr_resize}'")
        return self

    def key(self) -> str:
        """The store's device_key: a compact string of every setting, so other settings are other rows."""
        return (
            f"x{self.x}y{self.y}w{self.window}|sigma{self.sigma:g}|fold{self.fold}|k{self.kernel_size}"
            f"|{self.lr_resize}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------
# images and the blur path


def lam_images(path: str | Path, scale: int, lr_resize: str = "pil") -> tuple[np.ndarray, np.ndarray]:
    """(HR mod-cropped, LR) as uint8 HxWx3. Gray / palette / alpha images become RGB first (the official code
    takes the first three channels; alpha dropped before resizing, so PIL never premultiplies it)."""
    hr = modcrop(to_rgb(read_image(path)), scale)
    if min(hr.shape[:2]) < scale:
        raise UsageError(f"image {path} is smaller than x{scale}")
    if lr_resize == "matlab":
        return hr, make_lr(hr, scale)
    h, w = hr.shape[:2]
    lr = Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC)
    return hr, np.asarray(lr, dtype=np.uint8).copy()


def to_chw(img: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [0, 1] (torchvision's to_tensor)."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(255)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """The official isotropic Gaussian (size x size, odd size, sigma + 1e-5, normalised to sum 1)."""
    ax = np.arange(size, dtype=np.float64) - size // 2
    k = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * (sigma + SIGMA_EPS) ** 2))
    return k / k.sum()


def _filter(img: torch.Tensor, kernels: np.ndarray) -> torch.Tensor:
    """Every kernel (n, k, k) applied to every channel of ``img`` (C, h, w), borders reflected without
    repeating the edge (cv2.filter2D's default); float64 -> (n, C, h, w)."""
    pad = kernels.shape[-1] // 2
    x = F.pad(img.double()[:, None], (pad, pad, pad, pad), mode="reflect")
    # conv2d correlates, as cv2.filter2D does (the kernels are symmetric anyway)
    out = F.conv2d(x, torch.from_numpy(kernels)[:, None].to(img.device))
    return out.transpose(0, 1)


def blur_path(
    lr: torch.Tensor, sigma: float, fold: int, kernel_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The progressive blur path of ``lr`` (3, h, w): ``fold`` images (blurriest first, the last = ``lr``) and
    their path derivatives, float32 (fold, 3, h, w)."""
    if min(lr.shape[-2:]) <= kernel_size // 2:
        raise UsageError(
            f"the LR image ({tuple(lr.shape[-2:])}) is smaller than the blur kernel's half width"
        )
    kernels = np.stack([gaussian_kernel(kernel_size, s) for s in np.linspace(sigma, 0, fold + 1)])
    images = _filter(lr, kernels[1:])
    derivs = _filter(lr, (kernels[1:] - kernels[:-1]) * fold)
    return images.float(), derivs.float()


# ----------------------------------------------------------------------------------------------------------
# target, path integral, map, Gini


def window_gradient_magnitude(sr: torch.Tensor, x: int, y: int, window: int) -> torch.Tensor:
    """LAM's ``attr_grad``: sqrt of the squared forward differences down and right, summed over the window
    (rows y.., columns x..), every channel and every image of the batch."""
    dh = (sr[:, :, :-1, :] - sr[:, :, 1:, :]) ** 2
    dw = (sr[:, :, :, :-1] - sr[:, :, :, 1:]) ** 2
    magnitude = torch.pow(dh[:, :, :, :-1] + dw[:, :, :-1, :], 0.5)
    return magnitude[:, :, y : y + window, x : x + window].sum()


def path_attribution(
    model: nn.Module,
    images: torch.Tensor,
    derivs: torch.Tensor,
    target: Target,
    chunk: int,
    on_chunk: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Mean over the path of d target(model(image)) / d image x path derivative, (3, h, w) float64.
    ``chunk`` path images per pass; NaN gradients (sqrt at 0 in ``attr_grad``) count 0, as officially."""
    total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
    n = images.shape[0]
    for start in range(0, n, max(1, chunk)):
        batch = images[start : start + chunk].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(target(model(batch)), batch)
        grad = grad.masked_fill(torch.isnan(grad), 0.0)
        total += (grad * derivs[start : start + chunk]).double().sum(0)
        if on_chunk is not None:
            on_chunk(min(start + chunk, n), n)
    return total / n


def attribution_map(attribution: torch.Tensor) -> np.ndarray:
    """|sum over channels| / max (the official ``grad_abs_norm``), float64 (h, w)."""
    summed = np.abs(attribution.double().sum(0).cpu().numpy())
    peak = summed.max()
    if not (np.isfinite(peak) and peak > 0):
        raise NonFiniteResultError("the attribution is zero or not finite everywhere: no map, no DI")
    return summed / peak


def gini(values: np.ndarray) -> float:
    """The official Gini index: values shifted to be >= 0, plus 1e-7, sorted, sum((2i - n - 1) v_i) / (n sum v)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = np.sort(v - min(v.min(), 0.0) + GINI_SHIFT)
    n = v.size
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * v) / (n * v.sum()))


def diffusion_index(gini_index: float) -> float:
    return (1.0 - gini_index) * 100.0


# ----------------------------------------------------------------------------------------------------------
# one LAM


@dataclass
class LamResult:
    settings: LamSettings
    scale: int
    map: np.ndarray  # (h, w) in [0, 1], LR size
    gini: float
    di: float
    seconds: float
    hr: np.ndarray  # uint8 HxWx3, mod-cropped
    lr: np.ndarray  # uint8 hxwx3


def check_window(settings: LamSettings, sr_h: int, sr_w: int) -> None:
    """The window must lie inside the gradient map, which is one pixel smaller than the SR image per side."""
    s = settings
    if s.x + s.window > sr_w - 1 or s.y + s.window > sr_h - 1:
        raise UsageError(
            f"window x={s.x} y={s.y} size {s.window} lies outside the {sr_w}x{sr_h} image (x + window must be "
            f"<= {sr_w - 1}, y + window <= {sr_h - 1})"
        )


def default_chunk(h: int, w: int) -> int:
    return max(1, CHUNK_PIXELS // (h * w))


def compute_lam(
    model: nn.Module,
    hr: np.ndarray,
    lr: np.ndarray,
    scale: int,
    settings: LamSettings,
    *,
    chunk: int | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> LamResult:
    """The LAM of ``model`` (takes and returns [0, 1] RGB) for the window of ``settings`` on (hr, lr)."""
    s = settings.checked()
    if chunk is not None and chunk < 1:
        raise UsageError(f"--chunk must be >= 1, got {chunk}")
    check_window(s, lr.shape[0] * scale, lr.shape[1] * scale)
    started = time.perf_counter()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    images, derivs = blur_path(to_chw(lr).to(device), s.sigma, s.fold, s.kernel_size)
    want = (lr.shape[0] * scale, lr.shape[1] * scale)

    def target(sr: torch.Tensor) -> torch.Tensor:
        if not isinstance(sr, torch.Tensor) or sr.ndim != 4 or tuple(sr.shape[-2:]) != want:
            got = tuple(sr.shape) if isinstance(sr, torch.Tensor) else type(sr).__name__
            raise UsageError(
                f"the model returned {got} for a {lr.shape[1]}x{lr.shape[0]} LR image: not x{scale}"
            )
        return window_gradient_magnitude(sr, s.x, s.y, s.window)

    was_training = model.training
    model.eval()
    try:
        attribution = path_attribution(
            model, images, derivs, target, chunk or default_chunk(*lr.shape[:2]), on_chunk
        )
    finally:
        model.train(was_training)
    amap = attribution_map(attribution)
    g = gini(amap)
    return LamResult(s, scale, amap, g, diffusion_index(g), time.perf_counter() - started, hr, lr)


# ----------------------------------------------------------------------------------------------------------
# pictures, as the LAM demo shows them


def heat_map(amap: np.ndarray, scale: int) -> np.ndarray:
    """The demo's ``vis_saliency``: seismic colour map of map/2 + 1/2, nearest-upscaled by ``scale``."""
    import matplotlib

    rgb = (255 * matplotlib.colormaps["seismic"](amap * 0.5 + 0.5)[..., :3]).astype(np.uint8)
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def map_over_lr(res: LamResult, alpha: float = 0.5) -> np.ndarray:
    """The demo's blend: heat map x (1 - alpha) + LR upscaled to HR size (PIL bicubic) x alpha, truncated."""
    h, w = res.hr.shape[:2]
    lr_up = np.asarray(Image.fromarray(res.lr).resize((w, h), Image.BICUBIC), dtype=np.float64)
    return (heat_map(res.map, res.scale) * (1.0 - alpha) + lr_up * alpha).astype(np.uint8)


def hr_with_window(res: LamResult) -> np.ndarray:
    from PIL import ImageDraw

    s, img = res.settings, Image.fromarray(res.hr)
    ImageDraw.Draw(img).rectangle([s.x, s.y, s.x + s.window, s.y + s.window], outline=(255, 0, 0), width=2)
    return np.asarray(img)


def write_pictures(res: LamResult, base: Path) -> tuple[Path, Path]:
    """``base``.png = [HR with the window | heat map | heat map over LR] (the demo's grid), and
    ``base``_map.png = the heat map over LR alone (one model's panel of Fig. 6). Returns (panel, map)."""
    from harness.data import write_png_atomic

    over = map_over_lr(res)
    panel = np.concatenate([hr_with_window(res), heat_map(res.map, res.scale), over], axis=1)
    panel_path, map_path = base.with_name(base.name + ".png"), base.with_name(base.name + "_map.png")
    write_png_atomic(panel_path, panel)
    write_png_atomic(map_path, over)
    return panel_path, map_path
