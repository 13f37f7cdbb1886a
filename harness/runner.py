"""One evaluation end to end: zoo -> checkpoint -> data -> metrics -> results store row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from harness import provenance
from harness.checkpoint import file_sha256, load_into
from harness.evaluate import EvalResult, evaluate_model
from harness.metrics import check_protocol
from harness.zoo import ModelSpec, get_spec


class MissingCheckpointError(RuntimeError):
    """A model with learnable weights and no checkpoint to evaluate."""


@dataclass
class Prepared:
    spec: ModelSpec
    model: nn.Module
    checkpoint: Path | None
    checkpoint_hash: str


def find_checkpoint(spec: ModelSpec, scale: int, weights_dir: str | Path | None) -> Path | None:
    """The official checkpoint of ``spec`` at ``scale`` under ``weights_dir`` (searched recursively by name)."""
    if weights_dir is None or scale not in spec.checkpoints:
        return None
    root = Path(weights_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"weights dir {root} does not exist")
    hits = sorted(root.rglob(spec.checkpoints[scale]))
    return hits[0] if hits else None


def prepare(
    name: str,
    scale: int,
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
) -> Prepared:
    """Build ``name`` at ``scale`` and load its weights (explicit file, else found by official name)."""
    spec = get_spec(name)
    model = spec.builder(scale)
    ckpt = Path(checkpoint) if checkpoint else find_checkpoint(spec, scale, weights_dir)
    has_weights = any(p.requires_grad for p in model.parameters())
    if ckpt is None:
        if has_weights:
            where = f" in {weights_dir}" if weights_dir else ""
            raise MissingCheckpointError(
                f"model '{spec.name}' x{scale} has no checkpoint{where}: give --checkpoint FILE or --weights-dir DIR"
            )
        return Prepared(spec, model, None, "")
    load_into(model, ckpt, spec.checkpoint_keys)
    return Prepared(spec, model, ckpt, file_sha256(ckpt))


def result_row(prep: Prepared, res: EvalResult, device: str, source: str = "measured") -> dict:
    spec = prep.spec
    return {
        "kind": "eval",
        "model": spec.name,
        "variant": spec.name if spec.family == "lmfn" else "",
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
        "checkpoint": str(prep.checkpoint or ""),
        "checkpoint_hash": prep.checkpoint_hash,
        "device_key": "",  # PSNR does not depend on the device; latency rows set this
        "device": provenance.device_name(device),
        "extra": {"family": spec.family, "paper": spec.paper, "input_range": spec.input_range},
    }


def run_eval(
    name: str,
    scale: int,
    dataset: str,
    data_root: str | Path | None = None,
    protocol: str = "basicsr",
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
    device: str = "cpu",
    on_image: Callable[[int, int, str], None] | None = None,
    prepared: Prepared | None = None,
) -> dict:
    """Evaluate and return the store row (not yet written)."""
    check_protocol(protocol)
    prep = prepared or prepare(name, scale, checkpoint, weights_dir)
    torch.manual_seed(0)
    res = evaluate_model(
        prep.model, dataset, scale, data_root, protocol, prep.spec.input_range, device, on_image=on_image
    )
    return result_row(prep, res, device)
