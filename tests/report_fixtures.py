"""The synthetic store and published table the report tests share (their fixtures are in conftest.py)."""

from __future__ import annotations

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
    db.add(
        {
            "kind": "eval",
            "model": model,
            "scale": scale,
            "dataset": dataset,
            "psnr": psnr,
            "ssim": ssim,
            "n_images": 5,
            "protocol": kw.get("protocol", "basicsr"),
            "source": "trained" if kw.get("trained") else "measured",
            "extra": TRAIN if kw.get("trained") else {},
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
