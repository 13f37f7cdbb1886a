"""Training data: HR folders -> aligned (LR, HR) patch pairs with random flips and 90-degree rotations.

Sources (``--train-data``, repeatable): a folder of HR images, or a set name resolved under the data root:
``DIV2K`` (``<root>/DIV2K/DIV2K_train_HR``), ``Flickr2K`` (``<root>/Flickr2K/Flickr2K_HR``), ``DF2K`` (both,
or ``<root>/DF2K/DF2K_HR``), or any ``<root>/train/<name>/`` (images directly or in ``HR/``). With nothing
given, every training set found under the data root is used, else the embedded default (scikit-image photos).

LR images are made from the mod-cropped HR with the MATLAB-style bicubic and cached
(``harness.data.cached_lr``); ready-made DIV2K-style ``*_LR_bicubic/X{s}`` folders are used when present.

Sampling is a pure function of (seed, global sample index): sample ``i`` belongs to epoch ``i // n_images``,
its image is position ``i % n_images`` of that epoch's seeded permutation, and its crop and augmentation come
from a generator seeded with ``(seed, i)``. So the data order is resumable from one integer (samples seen),
identical for any number of DataLoader workers, and a rank-sharded run sees exactly the batches a single
process would.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from harness.data import (
    _file_fingerprint,
    cached_lr,
    default_train_images,
    list_images,
    modcrop,
    read_image,
    resolve_data_root,
    to_rgb,
)
from harness.errors import DataError, UsageError

DEFAULT_TRAIN = "default"
# sets above this many decoded bytes (HR + LR) are read from disk per sample instead of kept in memory
IN_MEMORY_LIMIT = 4 << 30


def _named_dirs(root: Path, name: str) -> list[Path]:
    """Folders of the training set ``name`` under ``root`` ([] when absent)."""
    key = name.lower()
    div2k = root / "DIV2K" / "DIV2K_train_HR"
    flickr = root / "Flickr2K" / "Flickr2K_HR"
    if key == "div2k":
        return [div2k] if div2k.is_dir() else []
    if key == "flickr2k":
        return [flickr] if flickr.is_dir() else []
    if key == "df2k":
        df2k = root / "DF2K" / "DF2K_HR"
        if df2k.is_dir():
            return [df2k]
        both = [d for d in (div2k, flickr) if d.is_dir()]
        return both if len(both) == 2 else []
    train = root / "train"
    if train.is_dir():
        for d in train.iterdir():
            if d.is_dir() and d.name.lower() == key:
                return [d / "HR"] if (d / "HR").is_dir() else [d]
    return []


def discover_train_sets(data_root: str | Path | None) -> list[str]:
    """Training sets present under the data root (DF2K first: the paper's set)."""
    root = resolve_data_root(data_root)
    if root is None:
        return []
    found = []
    if _named_dirs(root, "DF2K"):
        found.append("DF2K")
    else:
        found += [n for n in ("DIV2K", "Flickr2K") if _named_dirs(root, n)]
    if (root / "train").is_dir():
        found += sorted(d.name for d in (root / "train").iterdir() if d.is_dir() and d.name != "DF2K")
    return found


def resolve_sources(train_data: Sequence[str | Path] | None, data_root: str | Path | None) -> list[str]:
    """``--train-data`` values -> a list of HR folders (absolute paths) or ``["default"]``."""
    root = resolve_data_root(data_root)
    wanted = list(train_data or [])
    if not wanted:
        wanted = discover_train_sets(root) or [DEFAULT_TRAIN]
    out: list[str] = []
    for item in wanted:
        s = str(item)
        if s.lower() == DEFAULT_TRAIN:
            out.append(DEFAULT_TRAIN)
            continue
        p = Path(s).expanduser()
        if p.is_dir():
            out.append(str(p.resolve()))
            continue
        dirs = _named_dirs(root, s) if root is not None else []
        if not dirs:
            where = (
                f" or a training set under {root}" if root else " (no --data-root given to look names up in)"
            )
            raise DataError(f"training data '{s}' is not a folder{where}")
        out += [str(d.resolve()) for d in dirs]
    return list(dict.fromkeys(out))


def _ready_lr(hr_path: Path, scale: int) -> Path | None:
    # DIV2K layout: DIV2K_train_HR/0001.png <-> DIV2K_train_LR_bicubic/X4/0001x4.png
    d = hr_path.parent
    if d.name.endswith("_HR"):
        cand = (
            d.parent / f"{d.name[:-3]}_LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}{hr_path.suffix}"
        )
        if cand.is_file():
            return cand
    return None


@dataclass
class TrainImage:
    name: str
    path: Path | None  # None for in-memory (embedded) images
    size: tuple[int, int]  # mod-cropped HR (h, w)
    hr: np.ndarray | None = None  # uint8 HxWx3, kept when the set fits in memory
    lr: np.ndarray | None = None
    lr_path: Path | None = None

    def pair(self, scale: int) -> tuple[np.ndarray, np.ndarray]:
        if self.hr is not None and self.lr is not None:
            return self.hr, self.lr
        assert self.path is not None
        hr = to_rgb(modcrop(read_image(self.path), scale))
        lr = to_rgb(read_image(self.lr_path)) if self.lr_path else _lr_for(hr, scale, self.path)
        return hr, lr


def _lr_for(hr: np.ndarray, scale: int, path: Path) -> np.ndarray:
    ready = _ready_lr(path, scale)
    if ready is not None:
        lr = to_rgb(read_image(ready))
        if lr.shape[:2] == (hr.shape[0] // scale, hr.shape[1] // scale):
            return lr
    return to_rgb(cached_lr(hr, scale, path, _file_fingerprint(path)))


_Entry = tuple[str, Path | None, np.ndarray | None, tuple[int, int]]


def _scan(sources: Sequence[str], scale: int) -> list[_Entry]:
    """(name, file or None, embedded image or None, mod-cropped HR size) of every image, headers only."""
    entries: list[_Entry] = []
    for src in sources:
        if src == DEFAULT_TRAIN:
            for n, img in default_train_images():
                hr = to_rgb(modcrop(img, scale))
                entries.append((f"default/{n}", None, hr, hr.shape[:2]))
            continue
        files = list_images(Path(src))
        if not files:
            raise DataError(f"no images in training folder {src}")
        for f in files:
            try:
                with Image.open(f) as im:
                    w, h = im.size
            except OSError as e:
                raise DataError(f"cannot read image {f}: {e}") from None
            entries.append((f"{Path(src).name}/{f.stem}", f, None, (h - h % scale, w - w % scale)))
    return entries


def load_images(
    sources: Sequence[str],
    scale: int,
    hr_patch: int,
    on_image: Callable[[int, int, str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    in_memory: bool | None = None,
) -> list[TrainImage]:
    """Every usable image of ``sources``; images smaller than the HR patch are skipped with a warning.

    LR images are made (and cached) here, once, so workers only crop. ``in_memory=None`` keeps the decoded set
    in memory when it is below :data:`IN_MEMORY_LIMIT`.
    """
    warn = warn or (lambda m: warnings.warn(m, stacklevel=3))
    entries = _scan(sources, scale)
    usable = [e for e in entries if min(e[3]) >= hr_patch]
    small = [e[0] for e in entries if min(e[3]) < hr_patch]
    if small:
        warn(
            f"skipping {len(small)} training image(s) smaller than the {hr_patch}x{hr_patch} HR patch: "
            + ", ".join(small[:5])
            + (" ..." if len(small) > 5 else "")
        )
    if not usable:
        raise DataError(
            f"no training image is at least {hr_patch}x{hr_patch} (HR patch = LR patch x scale); "
            f"use a smaller --patch-size or other --train-data"
        )
    if in_memory is None:
        in_memory = sum(h * w * 3 * (1 + 1 / scale**2) for _, _, _, (h, w) in usable) < IN_MEMORY_LIMIT
    out: list[TrainImage] = []
    for k, (name, path, arr, size) in enumerate(usable):
        if arr is not None:  # embedded image: LR cached under a key of its name and shape
            lr = to_rgb(cached_lr(arr, scale, f"skimage-train:{name}", f"{arr.shape}"))
            out.append(TrainImage(name, None, size, arr, lr))
        else:
            assert path is not None
            hr = to_rgb(modcrop(read_image(path), scale))
            lr = _lr_for(hr, scale, path)  # makes the cache entry even when not kept in memory
            ready = _ready_lr(path, scale)
            if in_memory:
                out.append(TrainImage(name, path, size, hr, lr))
            else:
                out.append(TrainImage(name, path, size, lr_path=ready))
        if on_image is not None:
            on_image(k + 1, len(usable), name)
    return out


def augment(lr: np.ndarray, hr: np.ndarray, hflip: bool, vflip: bool, rot90: bool) -> tuple[np.ndarray, ...]:
    """The same flip / transpose on both images (BasicSR's augment: the 90-degree rotation is a transpose)."""
    out = []
    for img in (lr, hr):
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if rot90:
            img = img.transpose(1, 0, 2)
        out.append(img)
    return tuple(out)


class PatchDataset(Dataset):
    """Index ``i`` (a global sample number, unbounded) -> (LR patch, HR patch) float CHW tensors in [0, 1]."""

    def __init__(
        self, images: Sequence[TrainImage], scale: int, patch_size: int, seed: int, augment: bool = True
    ) -> None:
        self.images = list(images)
        self.scale = scale
        self.patch = patch_size
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:  # sampling is by global index; the length only bounds a DataLoader's checks
        return 1 << 62

    @lru_cache(maxsize=4)  # noqa: B019 - one small permutation per epoch, a handful alive at a time
    def _perm(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.images))

    def locate(self, i: int) -> tuple[int, int, int, bool, bool, bool]:
        """(image, y, x, hflip, vflip, rot90) of sample ``i``, LR coordinates."""
        epoch, pos = divmod(i, len(self.images))
        k = int(self._perm(epoch)[pos])
        h, w = (s // self.scale for s in self.images[k].size)
        rng = np.random.default_rng([self.seed, 1, i])
        y = int(rng.integers(0, h - self.patch + 1))
        x = int(rng.integers(0, w - self.patch + 1))
        flips = rng.integers(0, 2, size=3) if self.augment else np.zeros(3, dtype=int)
        return k, y, x, bool(flips[0]), bool(flips[1]), bool(flips[2])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, y, x, hf, vf, rot = self.locate(int(i))
        hr_img, lr_img = self.images[k].pair(self.scale)
        p, s = self.patch, self.scale
        lr = lr_img[y : y + p, x : x + p]
        hr = hr_img[y * s : (y + p) * s, x * s : (x + p) * s]
        lr, hr = augment(lr, hr, hf, vf, rot)
        return _chw(lr), _chw(hr)


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


class StepBatchSampler(Sampler[list[int]]):
    """Endless batches of global sample indices: step ``k`` covers samples ``start + k*G ... + G - 1``
    (``G`` = global batch), and rank ``r`` of ``W`` takes its contiguous ``G/W`` share - the rank-sharded
    counterpart of a DistributedSampler, resumable from ``start`` (samples seen)."""

    def __init__(self, start: int, global_batch: int, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size:
            raise UsageError(f"batch size {global_batch} is not divisible by the {world_size} processes")
        self.start = start
        self.global_batch = global_batch
        self.local = global_batch // world_size
        self.offset = rank * self.local

    def __iter__(self) -> Iterator[list[int]]:
        base = self.start + self.offset
        while True:
            yield list(range(base, base + self.local))
            base += self.global_batch


def iterate_batches(
    dataset: Dataset, sampler: StepBatchSampler, workers: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(LR, HR) batches of ``sampler``'s indices, loaded by ``workers`` processes, on ``device``."""
    pin = device.type == "cuda"
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    for lr, hr in loader:
        yield lr.to(device, non_blocking=pin), hr.to(device, non_blocking=pin)
