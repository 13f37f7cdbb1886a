"""Validation of the EMA weights during and at the end of a run, and the store rows it makes.

Validation rows are kind ``train`` (:func:`harness.results.train_row`) with the iteration in ``extra``; the
final evaluation makes kind ``eval`` rows with source ``trained`` (:func:`harness.results.eval_row`).
``extra`` comes from :func:`harness.train.state.provenance_extra`, the same function
:func:`harness.train.state.run_provenance` reads a run folder back with.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from harness import zoo
from harness.checkpoint import file_sha256
from harness.data import canonical_dataset
from harness.evaluate import EvalResult, evaluate_model
from harness.results import eval_row, train_row
from harness.store import Store
from harness.train.config import TrainConfig
from harness.train.distributed import Dist
from harness.train.state import MODEL_FILE, STATE_FILE, atomic_save, provenance_extra, read_state


class Validation:
    """Trainer mixin: EMA validation, the checkpoint-and-validate cadence, and the end-of-run rows."""

    # what it uses of the trainer
    cfg: TrainConfig
    dist: Dist
    device: torch.device
    out: Path
    raw: nn.Module
    ema: AveragedModel
    iteration: int
    elapsed: float
    curve: list[tuple[int, float]]
    val_dataset: str | None
    echo: Callable[[str], None]
    log: Callable[[dict], None]
    save: Callable[[], None]

    def validate(self, dataset: str | None = None, model: nn.Module | None = None) -> EvalResult:
        """EMA weights (or ``model``) on a benchmark set (basicsr protocol); the training model is untouched.

        The model takes [0, 1] input whatever the network's own range (``zoo.create`` owns that), so no
        scaling happens here."""
        model = model if model is not None else self.ema.module
        res = evaluate_model(
            model,
            dataset or self.val_dataset,
            self.cfg.scale,
            data_root=self.cfg.data_root,
            protocol="basicsr",
            device=self.device,
        )
        model.to(self.device)
        return res

    def run_extra(self) -> dict[str, Any]:
        """The row ``extra`` of the run as it stands (the state file just written says the same)."""
        return provenance_extra(self.cfg.to_json(), self.iteration, self.out, self.elapsed)

    def _rows(self, res: EvalResult, ckpt_hash: str) -> tuple[dict, dict]:
        """(train row, eval row) of one validation result."""
        info = zoo.zoo_info(self.raw)
        where = dict(checkpoint=str((self.out / MODEL_FILE).resolve()), checkpoint_hash=ckpt_hash)
        extra, device = self.run_extra(), str(self.device)
        return (
            train_row(info, res, device, run=extra, **where),
            eval_row(info, res, device, source="trained", extra=extra, **where),
        )

    def _log_val(self, res: EvalResult, event: str = "val") -> None:
        self.log(
            {
                "event": event,
                "iter": self.iteration,
                "dataset": res.dataset,
                "psnr": res.psnr,
                "ssim": res.ssim,
            }
        )

    def _checkpoint_and_validate(self, store: Store | None, validate: bool) -> None:
        """Write the checkpoint (every rank takes part); then, on rank 0, validate and store a train row."""
        self.save()
        if not (validate and self.dist.main):
            return
        res = self.validate()
        self.curve.append((self.iteration, res.psnr))
        self._log_val(res)
        self.echo(
            f"iter {self.iteration}: EMA {res.dataset} x{self.cfg.scale} {res.psnr:.3f} dB / {res.ssim:.4f}"
        )
        if store is not None:
            store.add(self._rows(res, file_sha256(self.out / MODEL_FILE))[0])

    def _finish(self, store: Store | None) -> list[dict]:
        """Last checkpoint is written; EMA eval -> a last "train" row and the final "eval" rows (rank 0).

        The final sets are ``final_eval``, or the validation set when that is empty."""
        if not self.dist.main:
            return []
        ckpt_hash = file_sha256(self.out / MODEL_FILE)
        val = self.val_dataset
        sets = [canonical_dataset(s) for s in (self.cfg.final_eval or ([val] if val else []))]
        rows = []
        for ds in dict.fromkeys([*([val] if val else []), *sets]):
            res = self.validate(ds)
            row_train, row_eval = self._rows(res, ckpt_hash)
            if ds == val:
                self.curve.append((self.iteration, res.psnr))
                self._log_val(res)
                if store is not None:
                    store.add(row_train)
            if ds in sets:
                self._log_val(res, "final")
                self.echo(
                    f"final EMA {ds} x{self.cfg.scale}: {res.psnr:.3f} dB / {res.ssim:.4f} "
                    f"after {self.iteration} iterations ({self.elapsed / 60:.1f} min)"
                )
                rows.append(store.add(row_eval) if store is not None else row_eval)
        # the final state again, now with the completed curve in it
        st_path = self.out / STATE_FILE
        st = read_state(st_path)
        st["curve"] = [list(c) for c in self.curve]
        atomic_save(st, st_path)
        return rows
