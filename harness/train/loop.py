"""The training loop: :class:`Trainer` (one run's model, EMA, optimizer, data and counters) and :func:`train`.

Recipe (``paper`` profile; LMFN Sec. 3.1): L1 loss, Adan (betas 0.98/0.92/0.99, no weight decay), constant
lr 5e-3, EMA 0.999, batch 64 of 48x48 LR patches, 2e6 iterations. ``short`` and ``smoke`` are CPU-sized.
The network comes from :func:`harness.zoo.create`, so it takes and returns [0, 1] RGB in training and in
validation alike, whatever its own input range (RFDN-AIM's 0-255 included).
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel

from harness import zoo
from harness.data import available_datasets, canonical_dataset
from harness.errors import HarnessError, NonFiniteLossError, UsageError
from harness.store import Store
from harness.train import distributed as ddp
from harness.train import state
from harness.train.config import TrainConfig
from harness.train.data import PatchDataset, StepBatchSampler, iterate_batches, load_images, resolve_sources
from harness.train.distill import Distillation, InitReport, warm_start
from harness.train.ema import EmaUpdate, _ema_avg_fn
from harness.train.validation import Validation

StepCallback = Callable[[int, int, dict], None]


@dataclass
class TrainResult:
    out: Path
    iteration: int
    completed: bool  # False when stopped by a signal before the end
    reason: str  # "done" | "budget" | "signal"
    seconds: float
    final: list[dict] = field(default_factory=list)  # final "eval" rows (rank 0)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (iteration, val PSNR)
    init_report: InitReport | None = None


class _StopFlag:
    """SIGINT / SIGTERM ask the loop to save and stop after the current step; a second Ctrl-C aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


@dataclass
class _Window:
    """Steps, loss and it/s since the last log record."""

    t: float = field(default_factory=time.perf_counter)
    n: int = 0
    loss: float = 0.0
    rate: float = 0.0

    def close(self) -> dict:
        now = time.perf_counter()
        self.rate = self.n / max(now - self.t, 1e-9)
        rec = {"loss": self.loss / max(self.n, 1), "it_per_s": self.rate}
        self.t, self.n, self.loss = now, 0, 0.0
        return rec


class Trainer(state.Checkpointing, Validation, Distillation):
    """Everything one training run holds; :meth:`run` is the loop. Also used by benchmarks/bench_train.py."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module | None = None,
        echo: Callable[[str], None] | None = None,
        on_data: Callable[[int, int, str], None] | None = None,
        resume: bool = False,
    ) -> None:
        self.dist = ddp.setup_distributed(ddp.default_device(cfg.device))
        self.echo = (echo or (lambda m: print(m, flush=True))) if self.dist.main else (lambda m: None)
        self.out = Path(cfg.out)
        self.cfg = cfg
        saved = self._saved_state() if resume else None
        self.device = ddp.pick_device(cfg.device, self.dist)
        self._runtime()
        self._build_model(model, fresh_run=saved is None)
        self.iteration = 0
        self.samples_seen = 0
        self.elapsed = 0.0  # training-loop seconds over all sessions (the --max-minutes budget)
        self.curve: list[tuple[int, float]] = []
        self.last_ckpt_iter: int | None = None
        if saved is not None:
            self._restore(saved)
            self.echo(f"resumed {self.out / state.STATE_FILE} at iteration {self.iteration}")
        self._load_data(on_data)

    # -- construction

    def _saved_state(self) -> dict:
        st = state.read_state(self.out / state.STATE_FILE)
        saved = TrainConfig.from_json(st["config"])
        if (saved.model, saved.scale) != (self.cfg.model, self.cfg.scale):
            raise UsageError(
                f"--resume: {self.out} holds a {saved.model} x{saved.scale} run, "
                f"not {self.cfg.model} x{self.cfg.scale}"
            )
        return st

    def _runtime(self) -> None:
        """Threads, determinism, seeds: every rank builds the same initial weights (DDP broadcasts anyway)."""
        cfg = self.cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)

    def _build_model(self, model: nn.Module | None, fresh_run: bool) -> None:
        """The network (``zoo.create``: [0, 1] in and out), ``--init``, EMA copy, DDP wrapper, optimizer."""
        cfg = self.cfg
        self.raw = model if model is not None else zoo.create(cfg.model, cfg.scale)
        self.init_report: InitReport | None = None
        if cfg.init and fresh_run:
            self.init_report = warm_start(self.raw, cfg.init, cfg.model if model is None else None)
            for line in self.init_report.lines():
                self.echo(line)
        self.raw.to(self.device).train()
        # a deep copy: it keeps create's input-range hooks, so the EMA weights see what training saw
        self.ema = AveragedModel(self.raw, multi_avg_fn=_ema_avg_fn(cfg.ema, cfg.ema_warmup), use_buffers=True)
        self.ema.eval()
        self._ema_step = EmaUpdate(self.ema, self.raw, _ema_avg_fn(cfg.ema, cfg.ema_warmup))
        self.net: nn.Module = self.raw
        if self.dist.ddp:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # no BatchNorm in these nets: no per-forward buffer broadcast keeps forward collective-free
            self.net = nn.parallel.DistributedDataParallel(self.raw, device_ids=ids, broadcast_buffers=False)
        self.opt = self._optimizer()
        self.loss_fn = nn.L1Loss()
        self._teacher: nn.Module | None = None

    def _load_data(self, on_data: Callable[[int, int, str], None] | None) -> None:
        cfg, d = self.cfg, self.dist
        if d.world > 1 and not d.main:
            dist.barrier()  # rank 0 fills the LR cache first; the others then read it
        self.images = load_images(
            cfg.train_data, cfg.scale, cfg.patch_size * cfg.scale, on_image=on_data, warn=self.echo
        )
        if d.world > 1 and d.main:
            dist.barrier()
        self.dataset = PatchDataset(self.images, cfg.scale, cfg.patch_size, cfg.seed)
        self.val_dataset: str | None = None  # "none": no validation and no final eval (plumbing runs)
        if (cfg.val_dataset or "").lower() != "none":
            default = "Set5" if "Set5" in available_datasets(cfg.data_root) else "Default"
            self.val_dataset = canonical_dataset(cfg.val_dataset or default)

    def _optimizer(self) -> torch.optim.Optimizer:
        from timm.optim import Adan

        return Adan(
            self.raw.parameters(), lr=self.cfg.lr, betas=self.cfg.betas, weight_decay=self.cfg.weight_decay
        )

    # -- pieces

    def batches(
        self, start: int | None = None, dataset: PatchDataset | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless (LR, HR) batches for this rank from global sample ``start`` (default: the resume point),
        of ``dataset`` (default: the training patches)."""
        sampler = StepBatchSampler(
            self.samples_seen if start is None else start,
            self.cfg.batch_size,
            self.dist.rank,
            self.dist.world,
        )
        return iterate_batches(
            self.dataset if dataset is None else dataset, sampler, self.cfg.workers, self.device
        )

    def forward_loss(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        sr = self.net(lr)
        loss = self.loss_fn(sr, hr)
        w = self.cfg.kd_weight
        if w:
            with torch.no_grad():
                target = self.teacher()(lr)
            loss = (1.0 - w) * loss + w * self.loss_fn(sr, target)
        return loss

    def lr_now(self) -> float:
        """The lr of the coming step (see :meth:`TrainConfig.lr_at`)."""
        return self.cfg.lr_at(self.iteration)

    def apply(self, loss: torch.Tensor) -> None:
        """Backward, optimizer step, EMA update."""
        lr = self.lr_now()  # cfg.lr itself under the paper's constant schedule
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self._ema_step()

    def step(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """One whole optimisation step (single process); returns the loss, detached."""
        loss = self.forward_loss(lr, hr)
        self.apply(loss)
        return loss.detach()

    # -- the loop

    def run(self, on_step: StepCallback | None = None) -> TrainResult:
        """Train to ``iters`` (or the time budget, or a signal), then the final validation and eval rows."""
        cfg, d = self.cfg, self.dist
        store = Store(cfg.store) if (cfg.store and d.main) else None
        self.log(
            {
                "event": "start",
                "iter": self.iteration,
                "world_size": d.world,
                "ddp_backend": dist.get_backend() if d.ddp else None,
                "device": str(self.device),
                "images": len(self.images),
                "config": cfg.to_json(),
            }
        )
        if cfg.init_distill and self.init_report is not None:  # a fresh warm-started run, not a resume
            self.distill_new_blocks(on_step)
        reason = self._loop(store, on_step)
        final = self._finish(store) if reason != "signal" else []
        if d.world > 1:
            self.log(
                {
                    "event": "ranks",
                    "iter": self.iteration,
                    "weight_digests": ddp.gather_digests(state.weights_digest(self.raw), d),
                }
            )
        self.log({"event": "end", "iter": self.iteration, "reason": reason, "elapsed": self.elapsed})
        ddp.teardown(d)
        return TrainResult(
            self.out,
            self.iteration,
            reason != "signal",
            reason,
            self.elapsed,
            final,
            list(self.curve),
            self.init_report,
        )

    def _loop(self, store: Store | None, on_step: StepCallback | None) -> str:
        """The steps of this session; returns why they ended ("done" | "budget" | "signal")."""
        cfg = self.cfg
        budget = cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf
        t_session, elapsed0 = time.perf_counter(), self.elapsed
        window, batches = _Window(), self.batches()
        with _StopFlag() as stop:
            while self.iteration < cfg.iters:
                try:
                    lr, hr = next(batches)
                except Exception:
                    if stop.signum is None:
                        raise
                    lr = hr = None  # a worker died of the same signal: save what we have
                loss = self.forward_loss(lr, hr) if lr is not None else torch.zeros(())
                self.elapsed = elapsed0 + (time.perf_counter() - t_session)
                # one tiny all-reduce per step keeps the ranks agreeing on loss, stop and budget
                flags = ddp.agree(
                    [
                        float(loss.detach()),
                        float(stop.signum is not None or lr is None),
                        float(self.dist.main and self.elapsed >= budget),
                    ],
                    self.dist,
                    self.device,
                )
                mean_loss, stopping, over = float(flags[0]) / self.dist.world, flags[1] > 0, flags[2] > 0
                if not math.isfinite(mean_loss):
                    self._nonfinite(mean_loss)
                if stopping:
                    self._stop_on_signal(stop.signum)
                    return "signal"
                self.apply(loss)
                self.iteration += 1
                self.samples_seen += cfg.batch_size
                window.n, window.loss = window.n + 1, window.loss + mean_loss
                self._after_step(store, window, last=self.iteration == cfg.iters or bool(over))
                if on_step is not None and self.dist.main:
                    psnr = self.curve[-1][1] if self.curve else None
                    on_step(
                        self.iteration, cfg.iters, {"loss": mean_loss, "it_per_s": window.rate, "psnr": psnr}
                    )
                if over:
                    return "budget"
        return "done"

    def _after_step(self, store: Store | None, window: _Window, last: bool) -> None:
        """The step's log record, checkpoint and validation, each at its cadence."""
        cfg, it = self.cfg, self.iteration
        if it % cfg.log_every == 0 or it == cfg.iters:
            lr = self.opt.param_groups[0]["lr"]  # the last step's
            self.log({"event": "step", "iter": it, **window.close(), "lr": lr, "elapsed": self.elapsed})
        val_now = bool(cfg.val_every and it % cfg.val_every == 0)
        if last or it % cfg.ckpt_every == 0 or val_now:
            self._checkpoint_and_validate(store, val_now and bool(self.val_dataset) and not last)

    def _nonfinite(self, loss: float) -> None:
        where = (
            f"the last good checkpoint {self.out / state.MODEL_FILE} (iteration {self.last_ckpt_iter})"
            if self.last_ckpt_iter is not None
            else "no checkpoint was written yet"
        )
        self.log({"event": "nonfinite", "iter": self.iteration + 1, "loss": str(loss)})
        raise NonFiniteLossError(
            f"loss became {loss} at iteration {self.iteration + 1}; stopped without "
            f"saving it. Kept {where}. Try a lower --lr."
        )

    def _stop_on_signal(self, signum: int | None) -> None:
        self.save()
        name = signal.Signals(signum).name if signum else "signal"
        self.log({"event": "stop", "iter": self.iteration, "reason": name})
        self.echo(f"{name}: saved iteration {self.iteration} to {self.out}; continue with --resume")


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model: nn.Module | None = None,
    echo: Callable[[str], None] | None = None,
    on_step: StepCallback | None = None,
    on_data: Callable[[int, int, str], None] | None = None,
) -> TrainResult:
    """Train per ``cfg`` (``model`` replaces the zoo build, for tests); see :mod:`harness.train`. A new run
    into a folder that holds one needs ``overwrite`` (else: UsageError naming --resume / --overwrite)."""
    if not cfg.train_data:
        cfg.train_data = resolve_sources(None, cfg.data_root)
    if resume and cfg.init:
        raise UsageError("--resume continues a run; --init starts a new one: give only one of them")
    if resume and overwrite:
        raise UsageError("--resume continues the run in --out; --overwrite replaces it: give only one of them")
    if not resume:
        state.claim_run_folder(cfg.out, overwrite)
    if cfg.store:
        Store.check_writable(cfg.store)  # before the data is read and the model built
    try:
        trainer = Trainer(cfg, model=model, echo=echo, on_data=on_data, resume=resume)
    except HarnessError:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    return trainer.run(on_step)
