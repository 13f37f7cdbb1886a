"""Training data: patch alignment, epoch order, rank shards, small images, folder layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.data import make_lr
from harness.errors import DataError
from harness.train.data import (
    PatchDataset,
    StepBatchSampler,
    augment,
    discover_train_sets,
    load_images,
    resolve_sources,
)


def _png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    # smooth-ish content so bicubic is not all ringing
    base = rng.integers(0, 256, size=(h // 4 + 2, w // 4 + 2, 3)).astype(np.uint8)
    img = Image.fromarray(base).resize((w, h), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def test_patches_are_aligned_after_augmentation(tmp_path):
    """An LR patch equals the MATLAB-bicubic downscale of its HR patch (away from the patch border, where the
    kernel would reach outside the crop), for every flip / rotation combination drawn."""
    s, p = 2, 24
    _png(tmp_path / "a.png", 150, 170, seed=1)
    _png(tmp_path / "b.png", 131, 97, seed=2)
    imgs = load_images([str(tmp_path)], s, p * s)
    ds = PatchDataset(imgs, s, p, seed=3)
    seen = set()
    for i in range(24):
        k, y, x, hf, vf, rot = ds.locate(i)
        seen.add((hf, vf, rot))
        lr, hr = ds[i]
        assert lr.shape == (3, p, p) and hr.shape == (3, p * s, p * s)
        lr_u8 = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hr_u8 = (hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        ref = make_lr(np.ascontiguousarray(hr_u8), s)  # augmentations commute with a symmetric integer resize
        m = 3
        diff = np.abs(ref[m:-m, m:-m].astype(int) - lr_u8[m:-m, m:-m].astype(int))
        assert diff.max() <= 1, (i, diff.max())
        # and the HR patch is the raw crop of the source, augmented
        src_hr = imgs[k].hr[y * s : (y + p) * s, x * s : (x + p) * s]
        np.testing.assert_array_equal(augment(src_hr, src_hr, hf, vf, rot)[1], hr_u8)
    assert len(seen) >= 4  # the augmentation draws really vary


def test_epoch_permutation_visits_every_image_once(tmp_path):
    for j in range(5):
        _png(tmp_path / f"{j}.png", 40, 40, seed=j)
    ds = PatchDataset(load_images([str(tmp_path)], 2, 32), 2, 16, seed=0)
    for epoch in range(3):
        assert sorted(ds.locate(epoch * 5 + q)[0] for q in range(5)) == list(range(5))


def test_rank_shards_partition_the_single_process_batches():
    single = iter(StepBatchSampler(start=40, global_batch=8))
    ranks = [iter(StepBatchSampler(start=40, global_batch=8, rank=r, world_size=4)) for r in range(4)]
    for _ in range(5):
        assert next(single) == [i for it in ranks for i in next(it)]
    with pytest.raises(ValueError, match="not divisible"):
        StepBatchSampler(0, 6, 0, 4)


def test_small_images_skipped_or_rejected(tmp_path):
    _png(tmp_path / "ok" / "big.png", 80, 90)
    _png(tmp_path / "ok" / "tiny.png", 20, 90)
    warned: list[str] = []
    imgs = load_images([str(tmp_path / "ok")], 2, 64, warn=warned.append)
    assert [i.name for i in imgs] == ["ok/big"]
    assert len(warned) == 1 and "tiny" in warned[0] and "64x64" in warned[0]
    _png(tmp_path / "bad" / "tiny.png", 20, 20)
    with pytest.raises(DataError, match="no training image is at least 64x64"):
        load_images([str(tmp_path / "bad")], 2, 64, warn=lambda m: None)


def test_training_set_layouts(tmp_path):
    root = tmp_path / "data"
    _png(root / "DIV2K" / "DIV2K_train_HR" / "0001.png", 64, 64)
    _png(root / "Flickr2K" / "Flickr2K_HR" / "000001.png", 64, 64)
    _png(root / "train" / "T91" / "t1.png", 64, 64)
    # a ready-made DIV2K LR file (deliberately not bicubic: all grey) must be used as is
    lr_file = root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X2" / "0001x2.png"
    lr_file.parent.mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 77, np.uint8)).save(lr_file)
    assert discover_train_sets(root) == ["DF2K", "T91"]
    srcs = resolve_sources(None, root)
    assert [Path(s).name for s in srcs] == ["DIV2K_train_HR", "Flickr2K_HR", "T91"]
    assert resolve_sources(["t91"], root) == [str((root / "train" / "T91").resolve())]
    assert resolve_sources([str(root / "train" / "T91")], None) == [str((root / "train" / "T91").resolve())]
    assert resolve_sources(None, None) == ["default"]
    with pytest.raises(DataError, match="'Urban'"):
        resolve_sources(["Urban"], root)
    imgs = load_images(resolve_sources(["DIV2K"], root), 2, 32)
    assert (imgs[0].lr == 77).all()


def test_shared_train_sets_resolve(data_root):
    srcs = resolve_sources(["T91", "BSD200"], data_root)
    assert [Path(s).name for s in srcs] == ["T91", "BSD200"]
    assert {"T91", "BSD200"} <= set(discover_train_sets(data_root))
