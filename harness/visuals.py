"""Fig. 5's inputs: each model's SR output of one benchmark image, made once and cached beside the store, and the
crop of one box from HR and from each output with the crop's PSNR, as ``visual`` rows.

Files (``<store dir>/visuals/``): ``<model>/x<s>/<set>/<image>.png`` the whole SR image (reused while the
store's row for it has the same checkpoint hash and the file exists; ``force`` remakes it),
``<model>/x<s>/<set>/<image>.box-x-y-w-h.png`` its crop and ``hr/x<s>/<set>/<image>.box-x-y-w-h.png`` the
HR crop. Reports read these PNGs; they never run a model.

Crop PSNR: the BasicSR convention of :mod:`harness.metrics` (uint8 output, Y channel unrounded, ``scale``
pixels shaved per edge) on the crop. LR is made from the mod-cropped HR with our MATLAB-style bicubic (the LR
cache of :mod:`harness.data`); ready-made LR folders are not consulted for this one image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness import zoo
from harness.data import (
    available_datasets,
    cached_lr,
    canonical_dataset,
    default_eval_images,
    find_hr_dir,
    list_images,
    modcrop,
    read_image,
    resolve_data_root,
    write_png_atomic,
)
from harness.errors import DataError, MissingCheckpointError, NonFiniteResultError, UsageError
from harness.evaluate import super_resolve
from harness.metrics import psnr, shave, to_uint8, y_channel
from harness.results import visual_row
from harness.settings import ABLATION_SET, BENCHMARKS, DEFAULT_SET
from harness.store import Store

__all__ = ["BOX_SIDE", "Box", "VisualImage", "crop_psnr", "default_box", "load_image", "make_visuals"]

BOX_SIDE = 96  # the default box: a 96x96 HR square at the image centre (Fig. 5-sized; fixed per image)
FIRST_CHOICE = "Urban100"  # the paper's Fig. 5 set


@dataclass(frozen=True)
class Box:
    """A crop in HR pixels: x = column, y = row of the top-left corner, width, height."""

    x: int
    y: int
    w: int
    h: int

    def crop(self, img: np.ndarray) -> np.ndarray:
        return img[self.y : self.y + self.h, self.x : self.x + self.w]

    def tag(self) -> str:
        return f"box-{self.x}-{self.y}-{self.w}-{self.h}"

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class VisualImage:
    dataset: str  # canonical set name
    name: str  # image stem
    hr: np.ndarray  # uint8 HxWx3 (or HxW), mod-cropped
    lr: np.ndarray


def parse_box(text: str) -> Box:
    """``x,y,w,h`` in HR pixels."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--box looks like x,y,w,h in HR pixels (e.g. 120,80,96,96), got '{text}'") from None
    return Box(x, y, w, h)


def check_box(box: Box, img: VisualImage, scale: int) -> Box:
    """The box if it lies inside the image and survives the shave; else a usage error saying why."""
    hh, ww = img.hr.shape[:2]
    if box.x < 0 or box.y < 0 or box.x + box.w > ww or box.y + box.h > hh:
        raise UsageError(
            f"--box {box.x},{box.y},{box.w},{box.h} is outside {img.dataset}/{img.name} ({ww}x{hh})"
        )
    if min(box.w, box.h) <= 2 * scale:
        raise UsageError(
            f"--box must be wider and taller than {2 * scale} pixels: {scale} are shaved per edge"
        )
    return box


def default_box(img: VisualImage, scale: int) -> Box:
    """A BOX_SIDE square (smaller for a small image) at the centre, its corner on the LR pixel grid."""
    hh, ww = img.hr.shape[:2]
    side = min(BOX_SIDE, hh, ww)
    x, y = (ww - side) // 2, (hh - side) // 2
    return Box(x - x % scale, y - y % scale, side, side)


def default_image(data_root: str | Path | None) -> str:
    """``SET/NAME`` of the first image of Urban100 when present, else of the ablation set; failing both, of the
    largest set there (then the embedded Default set, so the command runs on a machine without data)."""
    have = available_datasets(data_root)
    order = (FIRST_CHOICE, ABLATION_SET, *reversed(BENCHMARKS))
    ds = next((s for s in order if s in have), DEFAULT_SET)
    if ds == DEFAULT_SET:
        return f"{ds}/{default_eval_images()[0][0]}"
    root = resolve_data_root(data_root)
    return f"{ds}/{list_images(find_hr_dir(root, ds))[0].stem}"


def load_image(spec: str, scale: int, data_root: str | Path | None = None) -> VisualImage:
    """HR (mod-cropped) and LR of one benchmark image named ``SET/NAME`` (NAME: the file's stem)."""
    ds_text, sep, name = spec.partition("/")
    if not sep or not name:
        raise UsageError(f"--image looks like SET/NAME (e.g. Urban100/img_001), got '{spec}'")
    ds = canonical_dataset(ds_text)
    if ds == DEFAULT_SET:
        found = dict(default_eval_images())
        if name not in found:
            raise DataError(f"no image '{name}' in {ds}; it has {', '.join(found)}")
        hr = modcrop(found[name], scale)
        return VisualImage(ds, name, hr, cached_lr(hr, scale, f"skimage:{name}", f"{hr.shape}"))
    root = resolve_data_root(data_root)
    if root is None:
        raise DataError(f"--image {spec} needs --data-root; without one only {DEFAULT_SET}/NAME exists")
    files = {p.stem: p for p in list_images(find_hr_dir(root, ds))}
    if name not in files:
        raise DataError(f"no image '{name}' in {ds} under {root}")
    p = files[name]
    hr = modcrop(read_image(p), scale)
    stat = p.stat()
    return VisualImage(ds, name, hr, cached_lr(hr, scale, p, f"{stat.st_size}-{stat.st_mtime_ns}"))


def crop_psnr(sr_crop: np.ndarray, hr_crop: np.ndarray, scale: int) -> float:
    """PSNR of a crop: uint8, Y channel (BasicSR, unrounded), ``scale`` pixels shaved per edge."""
    a, b = (shave(y_channel(to_uint8(c), "basicsr"), scale) for c in (sr_crop, hr_crop))
    return psnr(a, b)


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def _cached(db: Store | None, probe: dict, png: Path) -> bool:
    """True where the store's row for this output has the same weights and its PNG is still there."""
    if db is None or not png.is_file():
        return False
    rows = db.rows(kind="visual", model=probe["model"], scale=probe["scale"], dataset=probe["dataset"])
    return any(r["checkpoint_hash"] == probe["checkpoint_hash"] and r["metrics"].get("png") == str(png)
               for r in rows)  # fmt: skip


def _default_models(scale: int, weights_dir: str | Path | None) -> list[str]:
    """Bicubic and every zoo model with an official checkpoint at ``scale`` (the weights cache, then
    ``weights_dir``)."""
    reg = zoo.registry()
    found = [
        n for n, s in reg.items() if s.family != "bicubic" and zoo.find_official(s, scale, weights_dir)
    ]
    return ["bicubic", *found]


def _create(
    name: str, scale: int, checkpoint: str | Path | None, weights_dir: str | Path | None, device: str
) -> torch.nn.Module:
    try:
        return zoo.create(name, scale, checkpoint, weights_dir, require_weights=True).eval().to(device)
    except MissingCheckpointError:
        raise MissingCheckpointError(
            f"model '{name}' x{scale} has no checkpoint: give --weights-dir DIR (or --checkpoint FILE with one "
            "--model); a figure of untrained outputs would mislead"
        ) from None


def make_visuals(
    models: Iterable[str] | None,
    *,
    store: str | Path,
    image: str | None = None,
    box: Box | None = None,
    scale: int = 4,
    data_root: str | Path | None = None,
    weights_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    force: bool = False,
    on_model: Callable[[str], None] | None = None,
) -> list[dict]:
    """Super-resolve one image with each model (bicubic always first), crop ``box`` and store a ``visual`` row
    per model; returns the rows as written. ``checkpoint`` belongs to a single named model."""
    Store.check_writable(Path(store))  # a bad --store fails before any model runs
    names = list(dict.fromkeys(zoo.get_spec(m).name for m in models)) if models else None
    if checkpoint is not None and (not names or len(names) != 1):
        raise UsageError("--checkpoint belongs to one model: give a single --model")
    names = names or _default_models(scale, weights_dir)
    names = ["bicubic", *(n for n in names if n != "bicubic")]
    img = load_image(image or default_image(data_root), scale, data_root)
    box = check_box(box or default_box(img, scale), img, scale)
    built = [_create(n, scale, checkpoint if n != "bicubic" else None, weights_dir, device) for n in names]
    cache = Path(store).resolve().parent / "visuals"  # every model loads before any file is written
    hr_crop = box.crop(_rgb(img.hr))
    hr_png = cache / "hr" / f"x{scale}" / img.dataset / f"{img.name}.{box.tag()}.png"
    write_png_atomic(hr_png, np.ascontiguousarray(hr_crop))
    db = Store(Path(store)) if Path(store).is_file() else None
    rows = []
    for model in built:
        info = zoo.zoo_info(model)
        if on_model is not None:
            on_model(info.name)
        folder = cache / info.name / f"x{scale}" / img.dataset
        png = folder / f"{img.name}.png"
        probe = {"model": info.name, "scale": scale, "dataset": f"{img.dataset}/{img.name}",
                 "checkpoint_hash": info.checkpoint_hash}  # fmt: skip
        if force or not _cached(db, probe, png):
            torch.manual_seed(0)
            sr = super_resolve(model, img.lr, scale, device)
            if not np.isfinite(sr).all():
                raise NonFiniteResultError(f"model {info.name} returned NaN/inf for {probe['dataset']}")
            write_png_atomic(png, to_uint8(sr))
        sr_crop = box.crop(read_image(png))
        value = crop_psnr(sr_crop, hr_crop, scale)
        if not math.isfinite(value):
            raise NonFiniteResultError(
                f"the {info.name} crop equals the HR crop exactly (PSNR +inf): choose another --box"
            )
        crop_png = folder / f"{img.name}.{box.tag()}.png"
        write_png_atomic(crop_png, np.ascontiguousarray(sr_crop))
        files = {"png": str(png), "crop_png": str(crop_png), "hr_crop_png": str(hr_png)}
        db = db or Store(Path(store))
        rows.append(db.add(visual_row(info, probe["dataset"], value, box.as_list(), files, device)))
    return rows
