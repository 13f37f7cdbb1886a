"""Benchmark data: HR discovery under a data root, mod-crop, LR made with the MATLAB-style bicubic and cached.

Layout under ``--data-root`` / ``$LMFN_BENCH_DATA``: ``benchmark/<Set5|Set14|B100|Urban100|Manga109>/HR/*``
(``<root>/<name>/HR`` also works). Ready-made LR folders are used when present: EDSR's ``LR_bicubic/X{s}``
(``babyx4.png``) and BasicSR's ``LRbicx{s}`` (same names as HR). Otherwise LR is made from the mod-cropped HR and
cached under the writable cache dir, never inside the data root (it may be read-only).
With no data root, the embedded ``Default`` set (scikit-image's bundled colour photos) serves.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.errors import DataError
from harness.paths import CACHE_ENV, DATA_ENV, cache_dir
from harness.resize import imresize
from harness.settings import BENCHMARKS, DEFAULT_SET

_ALIASES = {"bsd100": "B100", "bsds100": "B100", "b100": "B100", "default": DEFAULT_SET}
IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".webp")
# scikit-image's bundled photos (no download needed); the evaluation and training halves are disjoint
_DEFAULT_EVAL = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")
_DEFAULT_TRAIN = ("immunohistochemistry", "hubble_deep_field", "retina", "colorwheel", "motorcycle_right")


def canonical_dataset(name: str) -> str:
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    for b in BENCHMARKS:
        if b.lower() == key:
            return b
    raise DataError(f"unknown dataset '{name}'; known: {', '.join((*BENCHMARKS, DEFAULT_SET))}")


def resolve_data_root(data_root: str | Path | None) -> Path | None:
    if data_root is None:
        env = os.environ.get(DATA_ENV)
        data_root = Path(env) if env else None
    if data_root is None:
        return None
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a folder")
    return root


def read_image(path: str | Path) -> np.ndarray:
    """uint8 HxW (grayscale) or HxWx3 (RGB); palette/alpha images become RGB; 16-bit is scaled to 8-bit."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode == "F":  # 32-bit float (TIFF): no faithful 8-bit reading (it used to come out as zeros)
                raise DataError(
                    f"image {path} holds 32-bit floats, which cannot be read faithfully as 8-bit: save it as an "
                    "8- or 16-bit PNG"
                )
            if im.mode in ("I;16", "I;16B", "I"):
                arr = np.asarray(im, dtype=np.float64) / 257.0
                return np.clip(np.round(arr), 0, 255).astype(np.uint8)
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}") from None


def write_png_atomic(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.png")
    os.close(fd)
    try:
        Image.fromarray(img).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


SSIM_WINDOW = 11  # the protocol's SSIM window (metrics.ssim): the shaved image must hold one


def check_evaluable(hr: np.ndarray, scale: int, where: str) -> np.ndarray:
    """The mod-cropped HR if it survives the protocol at ``scale`` (``scale`` pixels shaved per edge, then an
    11x11 SSIM window), else a DataError naming the image and its size: such an image is an error, never a
    NaN in the set's mean (the choice documented in README, Protocol)."""
    h, w = hr.shape[:2]
    need = SSIM_WINDOW + 2 * scale
    if h < need or w < need:
        raise DataError(
            f"image {where} is {w}x{h} after cropping to a multiple of {scale}: too small to evaluate at "
            f"x{scale} (needs at least {need}x{need}: {scale} pixels shaved per edge, an 11x11 SSIM window)"
        )
    return hr


def to_rgb(img: np.ndarray) -> np.ndarray:
    """HxW gray -> HxWx3 with equal channels (what a network sees); RGB unchanged."""
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


@dataclass
class SRPair:
    name: str
    hr: np.ndarray  # uint8, mod-cropped, HxW (gray) or HxWx3
    lr: np.ndarray  # uint8, same channel layout as hr


@dataclass(frozen=True)
class PairSource:
    """One image of a benchmark set: its HR pixel count known up front (from the file's header; 0 where that
    is unreadable, whose error then comes from the read), the pair itself read when called."""

    pixels: int
    load: Callable[[], SRPair]

    def __call__(self) -> SRPair:
        return self.load()


def _header_pixels(path: Path) -> int:
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size[0] * im.size[1]
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return 0


def list_images(folder: Path) -> list[Path]:
    """The images of a set folder; a link that leads nowhere is an error like an unreadable file (never
    skipped in silence: the set would shrink without a word)."""
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    for p in found:
        if p.is_symlink() and not p.exists():
            raise DataError(f"image {p} is a broken or looping link")
    return [p for p in found if p.is_file()]


def _default_images(names: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    import skimage.data as skd

    out = []
    for n in names:
        if n.startswith("motorcycle_"):
            left, right, _ = skd.stereo_motorcycle()
            img = left if n.endswith("left") else right
        else:
            img = getattr(skd, n)()
        out.append((n, np.ascontiguousarray(img[..., :3]).astype(np.uint8)))
    return out


def default_eval_images() -> list[tuple[str, np.ndarray]]:
    return _default_images(_DEFAULT_EVAL)


def default_train_images() -> list[tuple[str, np.ndarray]]:
    return _default_images(_DEFAULT_TRAIN)


def _lr_cache_path(src: Path | str, scale: int, fingerprint: str) -> Path:
    key = hashlib.sha1(
        f"{Path(src).resolve() if isinstance(src, Path) else src}|{fingerprint}".encode()
    ).hexdigest()
    return cache_dir() / "lr" / f"x{scale}" / key[:2] / f"{key[2:18]}.png"


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR of a mod-cropped uint8 HR image with the MATLAB-style bicubic (rounded to uint8)."""
    return imresize(hr, 1.0 / scale)


_warned_cache: list[str] = []  # the one warning of this process


def _cache_unusable(e: OSError) -> None:
    """An LR cache that cannot be written (a file in its place, read-only) costs speed, not the run: LR is
    made in memory, and the user is told once which variable moves the cache."""
    if not _warned_cache:  # once per process; the run goes on
        _warned_cache.append(f"{e.strerror or e}: {e.filename or ''}")
        print(f"warning: LR cache unusable ({_warned_cache[0]}); making LR in memory. Set ${CACHE_ENV} to a "
              "writable folder to cache it.", file=sys.stderr, flush=True)  # fmt: skip


def cached_lr(hr: np.ndarray, scale: int, src: Path | str, fingerprint: str) -> np.ndarray:
    """LR for ``hr`` from the cache, made and stored atomically when absent or unreadable."""
    try:
        path = _lr_cache_path(src, scale, fingerprint)
    except OSError as e:  # the cache folder itself cannot be made
        _cache_unusable(e)
        return make_lr(hr, scale)
    if path.is_file():
        try:
            lr = read_image(path)
            if lr.shape[:2] == (hr.shape[0] // scale, hr.shape[1] // scale) and lr.ndim == hr.ndim:
                return lr
        except DataError:
            pass  # a torn or foreign file: make it again
    lr = make_lr(hr, scale)
    try:
        write_png_atomic(path, lr)
    except OSError as e:
        _cache_unusable(e)
    return lr


def _file_fingerprint(p: Path) -> str:
    st = p.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def find_hr_dir(root: Path, dataset: str) -> Path:
    for cand in (root / "benchmark" / dataset / "HR", root / dataset / "HR", root / "benchmark" / dataset):
        if cand.is_dir():
            return cand
    raise DataError(f"dataset {dataset} not found under {root} (looked for benchmark/{dataset}/HR)")


def _ready_lr(hr_dir: Path, hr_path: Path, scale: int) -> Path | None:
    base = hr_dir.parent
    stem, ext = hr_path.stem, hr_path.suffix
    for cand in (
        base / "LR_bicubic" / f"X{scale}" / f"{stem}x{scale}{ext}",
        base / f"LRbicx{scale}" / hr_path.name,
    ):
        if cand.is_file():
            return cand
    return None


def available_datasets(data_root: str | Path | None) -> list[str]:
    root = resolve_data_root(data_root)
    if root is None:
        return [DEFAULT_SET]
    out = []
    for b in BENCHMARKS:
        try:
            hr_dir = find_hr_dir(root, b)
        except DataError:
            continue
        if list_images(hr_dir):
            out.append(b)
    return out


def _file_pair(hr_dir: Path, p: Path, scale: int) -> SRPair:
    hr = check_evaluable(modcrop(read_image(p), scale), scale, str(p))
    ready = _ready_lr(hr_dir, p, scale)
    if ready is not None:
        lr = read_image(ready)
        if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
            raise DataError(f"LR image {ready} is {lr.shape[1]}x{lr.shape[0]}, expected HR/{scale}")
        if lr.ndim != hr.ndim:
            lr = to_rgb(lr) if hr.ndim == 3 else lr[..., 0]
    else:
        lr = cached_lr(hr, scale, p, _file_fingerprint(p))
    return SRPair(p.stem, hr, lr)


def _default_pair(name: str, img: np.ndarray, scale: int) -> SRPair:
    hr = modcrop(img, scale)
    return SRPair(name, hr, cached_lr(hr, scale, f"skimage:{name}", f"{hr.shape}"))


def benchmark_sources(dataset: str, scale: int, data_root: str | Path | None = None) -> list[PairSource]:
    """One source per image of a benchmark set, in order; calling it reads (HR, LR), raising DataError.

    The set, its folder and its file list are checked here; decoding waits for the call, so an evaluation can
    read image i+1 while the network works on image i (a corrupt file then fails the run when it is reached;
    results are only stored after the whole set, so nothing is made of a partly read set either way)."""
    if scale not in (2, 3, 4):
        raise DataError(f"scale must be 2, 3 or 4, got {scale}")
    name = canonical_dataset(dataset)
    if name == DEFAULT_SET:
        images = default_eval_images()
        return [PairSource(img.shape[0] * img.shape[1], partial(_default_pair, n, img, scale)) for n, img in images]
    root = resolve_data_root(data_root)
    if root is None:
        raise DataError(
            f"dataset {name} needs --data-root or ${DATA_ENV}; without one only {DEFAULT_SET} exists"
        )
    hr_dir = find_hr_dir(root, name)
    files = list_images(hr_dir)
    if not files:
        raise DataError(f"no images in {hr_dir}")
    return [PairSource(_header_pixels(p), partial(_file_pair, hr_dir, p, scale)) for p in files]


def benchmark_pairs(dataset: str, scale: int, data_root: str | Path | None = None) -> list[SRPair]:
    """All (HR, LR) pairs of a benchmark set; raises DataError (one line) for anything missing or unreadable.

    Every image is read before anything is returned, so a corrupt file fails before any result is made.
    """
    return [load() for load in benchmark_sources(dataset, scale, data_root)]
