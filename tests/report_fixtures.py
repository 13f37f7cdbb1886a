"""The synthetic store and published table the report tests share (their fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from harness.store import Store

PUBLISHED = """model,scale,params_k,flops_g,set5_psnr,set5_ssim,set14_psnr,set14_ssim,b100_psnr,b100_ssim,\
urban100_psnr,urban100_ssim,manga109_psnr,manga109_ssim,source
Bicubic,4,,,28.42,0.8104,26.00,0.7027,25.96,0.6675,23.14,0.6577,24.89,0.7866,test table
IMDN,4,715,41,32.21,0.8948,28.58,0.7811,27.56,0.7353,26.04,0.7838,30.45,0.9075,test table
LKDN,4,322,18.3,32.39,0.8979,28.79,0.7859,27.69,0.7402,26.42,0.7965,30.97,0.9140,test table
"""
OLD, NEW = "2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"
TRAIN = {"profile": "short", "iters": 2000}
LMFN = "lka-msm-ifm@mr"  # LMFN's key: the zoo's registered name of the full model


def _eval(db: Store, model: str, scale: int, dataset: str, psnr: float, ssim: float, **kw) -> None:
    """One eval row; ``per_image`` ({image: PSNR}) and ``extra`` (of a trained row) when given."""
    per_image = [{"image": k, "psnr": v, "ssim": ssim} for k, v in kw.get("per_image", {}).items()]
    db.add(
        {
            "kind": "eval",
            "model": model,
            "scale": scale,
            "dataset": dataset,
            "psnr": psnr,
            "ssim": ssim,
            "n_images": len(per_image) or 5,
            "metrics": {"per_image": per_image} if per_image else {},
            "protocol": kw.get("protocol", "basicsr"),
            "source": "trained" if kw.get("trained") else "measured",
            "extra": kw.get("extra", TRAIN) if kw.get("trained") else {},
            "checkpoint": f"/w/{model}_x{scale}.pth",
            "checkpoint_hash": kw.get("hash", f"{model}{scale}hash0123456789"),
            "created_at": kw.get("at", NEW),
            "device": "CPU Test",
            "versions": {"torch": "9.9", "python": "3.x"},
            "code_rev": "abc123",
        }
    )


def _profile(db: Store, model: str, scale: int, params: int, flops: float, **kw) -> None:
    metrics = {"params": params, "flops_paper": flops, "input": kw.get("input", "hd720")}
    db.add(
        {
            "kind": "profile",
            "model": model,
            "scale": scale,
            "metrics": metrics,
            "device_key": kw.get("key", "cpu"),
            "created_at": kw.get("at", NEW),
            "device": "CPU Test",
        }
    )


GRID_RECIPE = {**TRAIN, "batch_size": 16, "patch_size": 48, "train_data": ["T91", "BSD200"]}


def _run(db: Store, model: str, seed: int, per_image: dict[str, float], grid: str = "g1", **kw) -> None:
    """The eval row of one ablation-grid run (variant, seed): mean PSNR from its per-image values."""
    extra = {**GRID_RECIPE, "seed": seed, "grid": grid, "train_seconds": kw.pop("seconds", 300.0)}
    psnr = sum(per_image.values()) / len(per_image)
    kw.setdefault("hash", f"{model}-{grid}-s{seed}")
    _eval(db, model, 4, kw.pop("dataset", "Manga109"), psnr, kw.pop("ssim", 0.9), trained=True, extra=extra,
          per_image=per_image, **kw)  # fmt: skip


# an ablation grid (3 variants x 2 seeds on Manga109 x4): LKA is 0.30 dB below LMFN on every image (resolved),
# MSM's per-image differences average 0 with both signs (not resolved)
IMAGES = ("baby", "bird", "butterfly", "head", "woman")
_BASE = (31.0, 30.0, 29.0, 32.0, 28.0)
_LKA_DROP = {0: (0.25, 0.35, 0.30, 0.28, 0.32), 1: (0.29, 0.31, 0.33, 0.27, 0.30)}
_MSM_NOISE = {0: (0.20, -0.20, 0.10, -0.10, 0.0), 1: (-0.15, 0.15, 0.05, -0.05, 0.0)}
GRID_SSIM = {LMFN: (0.9100, 0.9102), "lka": (0.9050, 0.9054), "msm": (0.9080, 0.9080)}


def grid_values() -> dict[str, dict[int, dict[str, float]]]:
    """model -> seed -> {image: PSNR} of the synthetic grid."""
    out: dict[str, dict[int, dict[str, float]]] = {LMFN: {}, "lka": {}, "msm": {}}
    for seed in (0, 1):
        base = [v + 0.04 * seed for v in _BASE]
        out[LMFN][seed] = dict(zip(IMAGES, base, strict=True))
        out["lka"][seed] = {i: v - d for i, v, d in zip(IMAGES, base, _LKA_DROP[seed], strict=True)}
        out["msm"][seed] = {i: v + d for i, v, d in zip(IMAGES, base, _MSM_NOISE[seed], strict=True)}
    return out


def add_grid(db: Store) -> None:
    """The grid above (named g1), an older grid g0 and an older rerun row that must both be ignored."""
    for model, by_seed in grid_values().items():
        for seed, values in by_seed.items():
            _run(db, model, seed, values, ssim=GRID_SSIM[model][seed], seconds=240.0 + 120 * seed)
    _run(db, "lka", 0, dict.fromkeys(IMAGES, 20.0), hash="lka-rerun-old", at=OLD)  # older row of (lka, 0)
    for model in (LMFN, "lka"):
        _run(db, model, 0, dict.fromkeys(IMAGES, 25.0), grid="g0", at=OLD)


# ---------------------------------------------------------------------------------------------------------
# Figs. 5 and 6: lam and visual rows as harness.lam / harness.visuals write them, with tiny PNGs

LAM_IMAGE, VISUAL_IMAGE = "Set14/baboon", "Urban100/img_001"
LAM_DI = {"lkdn": 13.25, "bsrn": 11.5, "lmfn": 21.75, "vapsr": 17.0}  # vapsr has no map file
# solid tile colours, far from every colour matplotlib draws, so a test can find each tile on the page
TILE_COLOURS = {"hr": (250, 200, 0), "bicubic": (0, 200, 180), "lkdn": (150, 0, 200), "lmfn": (0, 120, 0)}
VISUAL_PSNR = {"bicubic": 21.5, "lkdn": 23.25, "lmfn": 23.75}
BOX = [40, 40, 32, 32]


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return str(path)


def _lam(db: Store, model: str, di: float, map_png: str, **kw) -> None:
    extra = {"x": kw.get("x", 120), "y": 80, "window": 16, "sigma": 1.2, "fold": 50, "kernel_size": 9,
             "lr_resize": "pil"}  # fmt: skip
    db.add({"kind": "lam", "model": model, "scale": 4, "dataset": kw.get("image", LAM_IMAGE),
            "metrics": {"di": di, "gini": 1 - di / 100, "map_png": map_png}, "extra": extra,
            "checkpoint_hash": kw.get("hash", f"{model}4hash"), "created_at": kw.get("at", NEW),
            "device": "CPU Test"})  # fmt: skip


def add_figures(db: Store, folder: Path) -> None:
    """Fig. 6: four models on one image and window (VapSR without a map), one row on another image (left
    out), an older LKDN row (replaced). Fig. 5: HR, bicubic, LKDN and LMFN crops of one box."""
    for model, di in LAM_DI.items():
        colour = TILE_COLOURS.get(model, (0, 0, 0))
        _lam(db, model, di, _png(folder / f"lam-{model}.png", colour, (48, 32)) if model != "vapsr" else "")
    _lam(db, "lkdn", 99.0, "", at=OLD, x=7, hash="older")  # another window, older: not the chosen group
    _lam(db, "bsrn", 50.0, "", image="Set14/zebra")
    hr = _png(folder / "hr.png", TILE_COLOURS["hr"])
    for model, value in VISUAL_PSNR.items():
        crop = _png(folder / f"crop-{model}.png", TILE_COLOURS[model])
        db.add({"kind": "visual", "model": model, "scale": 4, "dataset": VISUAL_IMAGE, "protocol": "basicsr",
                "metrics": {"crop_psnr": value, "box": BOX, "png": crop, "crop_png": crop, "hr_crop_png": hr},
                "checkpoint_hash": f"{model}4hash", "created_at": NEW, "device": "CPU Test"})  # fmt: skip
