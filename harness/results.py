"""The one row schema of the results store: every eval, profile, train, lam and visual row is made here.

A row is a plain dict with the store's columns (see :mod:`harness.store`); ``Store.add`` fills in the
provenance every row shares (uid, time, code revision, library versions). ``source`` says what a number is:
``measured`` (an official or user checkpoint, or a parameter-free model), ``trained`` (weights trained by
this tool; ``extra`` names the run and its recipe). It is part of the store key, so re-measuring an official
file never replaces a trained run's row.
``lam`` rows: dataset "<set>/<image stem>", device_key = the LAM settings, psnr/ssim NULL, metrics {di, gini,
seconds, map_png}, extra {x, y, window, sigma, fold, kernel_size, lr_resize, image, panel_png, family, paper}.
"""

from __future__ import annotations

from typing import Any

from harness import provenance
from harness.evaluate import EvalResult
from harness.store import KEY_COLS
from harness.zoo import ZooInfo


def _model_cols(info: ZooInfo) -> dict[str, Any]:
    return {"model": info.name, "variant": info.name if info.family == "lmfn" else ""}


def visual_row(
    info: ZooInfo, dataset: str, crop_psnr: float, box: list[int], files: dict[str, str], device: str
) -> dict[str, Any]:
    """Fig. 5: one model's crop of one image (``dataset`` = "<set>/<image>"); ``files``: png, crop_png,
    hr_crop_png. The crop PSNR lives in ``metrics`` (the psnr column is for set means)."""
    return {
        "kind": "visual",
        **_model_cols(info),
        "scale": info.scale,
        "dataset": dataset,
        "protocol": "basicsr",
        "metrics": {"crop_psnr": crop_psnr, "box": box, **files},
        "source": "measured",
        "checkpoint": info.checkpoint,
        "checkpoint_hash": info.checkpoint_hash,
        "device_key": "box=" + ",".join(map(str, box)),  # two boxes of one image are two rows
        "device": provenance.device_name(device),
        "extra": {"family": info.family, "paper": info.paper, "input_range": info.input_range,
                  "lr": "matlab"},  # LR from our MATLAB-style resize (harness.visuals)
    }


def eval_row(
    info: ZooInfo,
    res: EvalResult,
    device: str,
    *,
    kind: str = "eval",
    source: str = "measured",
    checkpoint: str | None = None,
    checkpoint_hash: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """PSNR/SSIM of one model on one set (per-image values kept in ``metrics``)."""
    return {
        "kind": kind,
        **_model_cols(info),
        "scale": res.scale,
        "dataset": res.dataset,
        "protocol": res.protocol,
        "psnr": res.psnr,
        "ssim": res.ssim,
        "n_images": res.n_images,
        "metrics": {
            "per_image": res.per_image,
            "seconds": res.seconds,
            "forward_seconds": res.forward_seconds,
        },
        "source": source,
        "checkpoint": info.checkpoint if checkpoint is None else checkpoint,
        "checkpoint_hash": info.checkpoint_hash if checkpoint_hash is None else checkpoint_hash,
        "device_key": "",  # PSNR does not depend on the device; latency rows set it
        "device": provenance.device_name(device),
        "extra": {"family": info.family, "paper": info.paper, "input_range": info.input_range, **(extra or {})},
    }


def train_row(
    info: ZooInfo, res: EvalResult, device: str, *, checkpoint: str, checkpoint_hash: str, run: dict[str, Any]
) -> dict[str, Any]:
    """A validation of a training run's EMA weights (``run``: the recipe and iteration, see train.state)."""
    return eval_row(
        info,
        res,
        device,
        kind="train",
        source="trained",
        checkpoint=checkpoint,
        checkpoint_hash=checkpoint_hash,
        extra=run,
    )


def profile_device_key(input_tag: str, device: str, dtype: str, channels_last: bool, compile: bool) -> str:
    """What makes two profiles of one model comparable: FLOP input, device (or no latency), dtype, options."""
    return "|".join([input_tag, device, dtype, "cl" if channels_last else "", "compile" if compile else ""])


def profile_row(info: ZooInfo, metrics: dict[str, Any], device_key: str, device: str) -> dict[str, Any]:
    """Params, FLOPs and (optionally) latency of one model at one scale (``metrics`` from measure)."""
    return {
        "kind": "profile",
        **_model_cols(info),
        "scale": info.scale,
        "dataset": metrics["input"],
        "protocol": "",
        "metrics": metrics,
        "source": "measured",
        "checkpoint": "",
        "checkpoint_hash": "",
        "device_key": device_key,
        "device": provenance.device_name(device),
        "extra": {"family": info.family, "paper": info.paper},
    }


def lam_row(
    info: ZooInfo,
    dataset: str,
    settings: dict[str, Any],
    device_key: str,
    metrics: dict[str, Any],
    device: str,
    *,
    source: str = "measured",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The LAM diffusion index of one model for one image and window (``settings``: harness.lam.LamSettings
    as a dict; ``device_key``: its compact key; ``metrics``: di, gini, seconds, map_png)."""
    return {
        "kind": "lam",
        **_model_cols(info),
        "scale": info.scale,
        "dataset": dataset,
        "protocol": "",
        "psnr": None,
        "ssim": None,
        "metrics": metrics,
        "source": source,
        "checkpoint": info.checkpoint,
        "checkpoint_hash": info.checkpoint_hash,
        "device_key": device_key,  # the settings that change the DI: other settings are other rows
        "device": provenance.device_name(device),
        "extra": {**settings, "family": info.family, "paper": info.paper, **(extra or {})},
    }


def store_key(row: dict[str, Any]) -> dict[str, Any]:
    """The columns that identify "the same measurement" (a forced re-measurement replaces it)."""
    return {k: row.get(k, "") for k in KEY_COLS}
