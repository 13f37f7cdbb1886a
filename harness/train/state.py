"""The files of a run folder and what they record.

``net_g_latest.pth`` (BasicSR layout ``{"params", "params_ema"}``: what ``lmfn-bench eval --checkpoint``
loads, ``params_ema`` first), ``training_state.pt`` (everything an exact resume needs: model, optimizer, EMA,
RNG states of every rank, iteration, samples seen, config), ``log.jsonl``. Both ``.pt``/``.pth`` files are
written atomically (temp file + ``os.replace``), model file first, so a kill at any moment leaves a
consistent pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel

from harness.errors import CheckpointMismatchError, MissingFileError, UsageError
from harness.train.distributed import Dist

MODEL_FILE = "net_g_latest.pth"
STATE_FILE = "training_state.pt"
LOG_FILE = "log.jsonl"
STATE_FORMAT = "lmfn-bench-train/1"


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def rng_state(device: torch.device) -> dict:
    """Every RNG a training step draws from (torch, numpy, python, CUDA on a GPU)."""
    # numpy's state as tensors so the state file loads with torch.load(weights_only=True)
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": list(random.getstate()),
    }
    if device.type == "cuda":
        st["cuda"] = torch.cuda.get_rng_state(device)
    return st


def set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    kind, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = st["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in st and device.type == "cuda":
        torch.cuda.set_rng_state(st["cuda"], device)


def read_state(path: str | Path) -> dict:
    """A ``training_state.pt``; MissingFileError / CheckpointMismatchError (one line) when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"no training state to resume: {path} does not exist")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointMismatchError(f"cannot read training state {path}: {type(e).__name__}: {e}") from None
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT:
        raise CheckpointMismatchError(f"{path} is not an lmfn-bench training state")
    return st


def weights_digest(model: nn.Module) -> str:
    """sha256 of every state tensor's bytes in name order (to compare ranks / runs)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def provenance_extra(
    config: dict[str, Any], iteration: int, run: str | Path, train_seconds: float = 0.0
) -> dict[str, Any]:
    """What a trained row records in ``extra``: the recipe, the iteration and the run folder.

    One function for the live trainer and for :func:`run_provenance` (a checkpoint read back later), so a
    row made either way says the same."""
    return {
        "profile": config["profile"],
        "iters": iteration,
        "iteration": iteration,
        "train_seconds": round(float(train_seconds), 2),  # training-loop wall time (reported, never a budget)
        "init": config.get("init") or "",
        "init_distill": config.get("init_distill", 0),
        "distill_teacher": config.get("distill_teacher") or "",
        "kd_weight": config.get("kd_weight", 0.0),
        "lr_schedule": config.get("lr_schedule", "constant"),
        "run": str(Path(run).resolve()),
        "train_data": list(config.get("train_data") or []),
        "seed": config.get("seed", 0),
        "grid": config.get("grid", ""),
        "batch_size": config.get("batch_size"),
        "patch_size": config.get("patch_size"),
    }


def claim_run_folder(out: str | Path, overwrite: bool = False) -> None:
    """A new run never silently replaces another: a folder holding a model or training state is an error
    naming ``--resume`` and ``--overwrite``; with ``overwrite`` (rank 0 only) the old run's files go first."""
    out = Path(out)
    found = [f for f in (MODEL_FILE, STATE_FILE) if (out / f).exists()]
    if found and not overwrite:
        raise UsageError(
            f"{out} already holds a training run ({', '.join(found)}): continue it with --resume, or start "
            "again from scratch with --overwrite"
        )
    if found and int(os.environ.get("RANK", "0")) == 0:
        for f in (MODEL_FILE, STATE_FILE, LOG_FILE):
            (out / f).unlink(missing_ok=True)


def run_provenance(checkpoint: str | Path) -> dict[str, Any] | None:
    """The ``extra`` of a trained row for ``checkpoint`` when its folder is an lmfn-bench run folder (holds a
    ``training_state.pt``), else None."""
    folder = Path(checkpoint).parent
    if not (folder / STATE_FILE).is_file():
        return None
    try:
        st = read_state(folder / STATE_FILE)
    except CheckpointMismatchError:  # some other tool's file of that name
        return None
    return provenance_extra(st["config"], int(st["iteration"]), folder, float(st.get("elapsed", 0.0)))


# ----------------------------------------------------------------------------------------------- save / restore


class Checkpointing:
    """Trainer mixin: the run folder's files (model file, training state, log) and restoring from them."""

    # what it uses of the trainer
    cfg: Any  # TrainConfig (harness.train.config imports this module, so it is not named here)
    dist: Dist
    device: torch.device
    out: Path
    raw: nn.Module
    ema: AveragedModel
    opt: torch.optim.Optimizer
    iteration: int
    samples_seen: int
    elapsed: float
    curve: list[tuple[int, float]]
    last_ckpt_iter: int | None
    echo: Callable[[str], None]

    def _gathered_rngs(self) -> list:
        """Every rank's RNG state, in rank order, on rank 0 (a collective: every rank must call)."""
        rng = rng_state(self.device)
        if self.dist.world <= 1:
            return [rng]
        rngs: list = [None] * self.dist.world
        dist.all_gather_object(
            rngs, {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in rng.items()}
        )
        return rngs

    def save(self) -> None:
        """Write the BasicSR-layout model file and the full training state (rank 0; every rank must call)."""
        rngs = self._gathered_rngs()
        if not self.dist.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        ema_sd = {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()}
        model_sd = {k: v.detach().cpu() for k, v in self.raw.state_dict().items()}
        atomic_save({"params": model_sd, "params_ema": ema_sd}, self.out / MODEL_FILE)
        state = {
            "format": STATE_FORMAT,
            "iteration": self.iteration,
            "samples_seen": self.samples_seen,
            "elapsed": self.elapsed,
            "curve": [list(c) for c in self.curve],
            "config": self.cfg.to_json(),
            "model": model_sd,
            "ema": self.ema.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": rngs,
            "world_size": self.dist.world,
        }
        atomic_save(state, self.out / STATE_FILE)
        self.last_ckpt_iter = self.iteration
        self.log({"event": "checkpoint", "iter": self.iteration, "file": MODEL_FILE})

    def _restore(self, st: dict) -> None:
        """Put a saved training state back (weights, EMA, optimizer, counters, RNGs)."""
        self.raw.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["optimizer"])
        self.iteration = int(st["iteration"])
        self.samples_seen = int(st["samples_seen"])
        self.elapsed = float(st.get("elapsed", 0.0))
        self.curve = [tuple(c) for c in st.get("curve", [])]
        self.last_ckpt_iter = self.iteration
        rngs, d = st["rng"], self.dist
        if len(rngs) == d.world:
            set_rng_state(rngs[d.rank], self.device)
        else:  # another world size: the data order is still exact; model-side randomness is reseeded
            self.echo(f"resume: state from {len(rngs)} process(es), now {d.world}; RNGs reseeded")
            torch.manual_seed(self.cfg.seed + self.iteration + d.rank)

    def log(self, rec: dict) -> None:
        """Append one record to ``log.jsonl`` (rank 0)."""
        if not self.dist.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        rec = {"time": round(time.time(), 3), **rec}
        with open(self.out / LOG_FILE, "a") as f:
            f.write(json.dumps(rec) + "\n")
