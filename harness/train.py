"""Training: the paper's recipe as a profile, EMA validation into the results store, exact resume, warm start,
and DistributedDataParallel under ``torchrun``.

Recipe (``paper`` profile; LMFN Sec. 3.1): L1 loss, Adan (betas 0.98/0.92/0.99, no weight decay), constant
lr 5e-3, EMA 0.999, batch 64 of 48x48 LR patches, 2e6 iterations. ``short`` and ``smoke`` are CPU-sized.

Output folder (``--out``): ``net_g_latest.pth`` (BasicSR layout ``{"params", "params_ema"}``: what
``lmfn-bench eval --checkpoint`` loads, ``params_ema`` first), ``training_state.pt`` (everything an exact
resume needs: model, optimizer, EMA, RNG states of every rank, iteration, samples seen, config),
``log.jsonl``.
Both files are written atomically (temp file + ``os.replace``), model file first, so a kill at any moment
leaves a consistent pair.

Distributed: ``WORLD_SIZE > 1`` in the environment (torchrun) -> one process per GPU (nccl) or CPU process
(gloo); ``batch_size`` is the global batch, split evenly, and rank ``r`` takes its slice of the same global
sample sequence a single process would draw. Rank 0 alone validates, logs and writes checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader

from harness import provenance
from harness.checkpoint import (
    DEFAULT_KEYS,
    CheckpointMismatchError,
    file_sha256,
    load_into,
    read_checkpoint,
    unwrap_state_dict,
)
from harness.data import DataError, available_datasets, canonical_dataset
from harness.evaluate import EvalResult, evaluate_model
from harness.store import Store
from harness.train_data import PatchDataset, StepBatchSampler, load_images, resolve_sources
from harness.zoo import ModelSpec, UnknownModelError, get_spec

MODEL_FILE = "net_g_latest.pth"
STATE_FILE = "training_state.pt"
LOG_FILE = "log.jsonl"
STATE_FORMAT = "lmfn-bench-train/1"


@dataclass(frozen=True)
class Profile:
    """A named training recipe; every field can be overridden from the command line."""

    name: str
    iters: int
    batch_size: int  # global batch (over all processes)
    patch_size: int  # LR patch side; the HR patch is patch_size * scale
    lr: float
    ema: float
    val_every: int  # 0: validate only at the end
    ckpt_every: int
    log_every: int
    ema_warmup: bool = False  # decay min(ema, (1+n)/(10+n)): lets short runs' EMA forget the random init
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99)
    weight_decay: float = 0.0
    max_minutes: float | None = None  # wall-clock budget of the training loop (validation included)


LR_SCHEDULES = ("constant", "cosine")
PROFILES: dict[str, Profile] = {
    # LMFN Sec. 3.1 (BasicSR-style training as in LKDN); validation/checkpoint cadence is ours
    "paper": Profile(
        "paper",
        iters=2_000_000,
        batch_size=64,
        patch_size=48,
        lr=5e-3,
        ema=0.999,
        val_every=5000,
        ckpt_every=5000,
        log_every=100,
    ),
    # CPU, <= 30 min on 2 cores: many small steps learn most per second. Measured on 2 shared cores (LMFN x4,
    # T91+BSD200): batch 8 of 24x24 at the paper's lr 5e-3 gained Set5 PSNR faster per step and per second than
    # 32x32 at 2e-3. The EMA warms up ((1+n)/(10+n)) so it tracks a run this short.
    "short": Profile(
        "short",
        iters=5000,
        batch_size=8,
        patch_size=24,
        lr=5e-3,
        ema=0.999,
        ema_warmup=True,
        val_every=50,
        ckpt_every=50,
        log_every=10,
        max_minutes=27.0,
    ),
    # a few steps on tiny patches: plumbing checks (tests)
    "smoke": Profile(
        "smoke",
        iters=4,
        batch_size=2,
        patch_size=16,
        lr=1e-3,
        ema=0.9,
        val_every=0,
        ckpt_every=2,
        log_every=1,
    ),
}


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; training stopped without writing the bad weights."""


@dataclass
class TrainConfig:
    model: str
    scale: int = 4
    profile: str = "paper"
    iters: int = 0
    batch_size: int = 0
    patch_size: int = 0
    lr: float = 0.0
    ema: float = 0.0
    ema_warmup: bool = False
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99)
    weight_decay: float = 0.0
    val_every: int = 0
    ckpt_every: int = 0
    log_every: int = 0
    max_minutes: float | None = None
    val_dataset: str | None = None  # None: Set5 when the data root has it, else the embedded Default set
    final_eval: list[str] = field(default_factory=list)  # sets for the final "eval" rows; [] = [val_dataset]
    train_data: list[str] = field(default_factory=list)  # resolved source folders (or ["default"])
    data_root: str | None = None
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    init: str | None = None
    # warm start, then block-wise distillation (our addition, not the paper's): see Trainer.distill_new_blocks
    init_distill: int = 0  # steps; 0 = off
    distill_teacher: str | None = None  # zoo model the --init checkpoint loads into strictly (e.g. lkdn)
    distill_lr: float = 2e-3  # Adam lr of those steps
    distill_patch_size: int | None = None  # LR patch of those steps; None = patch_size
    kd_weight: float = 0.0  # loss = (1-w) L1(SR, HR) + w L1(SR, teacher's SR); the teacher as above
    warmup_iters: int = 0  # linear lr warm-up; 0 = the paper's constant lr
    lr_schedule: str = "constant"  # the paper's; "cosine": half-cosine to 0 at --iters (not the paper's)
    out: str = ""
    store: str | None = None
    deterministic: bool = False
    threads: int | None = None

    @classmethod
    def from_profile(cls, model: str, profile: str = "paper", **overrides: Any) -> TrainConfig:
        """A profile's values with the given (non-None) overrides on top."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile '{profile}'; choose one of {', '.join(PROFILES)}")
        base = {k: v for k, v in dataclasses.asdict(PROFILES[profile]).items() if k != "name"}
        base.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(model=model, profile=profile, **base)
        if not cfg.out:
            cfg.out = str(
                Path("runs") / f"{model.replace(':', '_').replace('@', '_')}_x{cfg.scale}_{profile}"
            )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        checks = [
            (self.iters >= 1, f"--iters must be >= 1, got {self.iters}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.patch_size >= 4, f"--patch-size must be >= 4, got {self.patch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number, got {self.lr}"),
            (0.0 <= self.ema < 1.0, f"--ema must be in [0, 1), got {self.ema}"),
            (
                self.val_every >= 0 and self.ckpt_every >= 1 and self.log_every >= 1,
                "--val-every must be >= 0, --ckpt-every and --log-every >= 1",
            ),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.max_minutes is None or self.max_minutes > 0, "--max-minutes must be > 0"),
            (
                self.warmup_iters >= 0 and self.init_distill >= 0,
                "--warmup-iters, --init-distill must be >= 0",
            ),
            (
                not (self.init_distill or self.kd_weight) or (self.init and self.distill_teacher),
                "--init-distill and --kd-weight need --init CHECKPOINT and --distill-teacher MODEL "
                "(the model it belongs to)",
            ),
            (0.0 <= self.kd_weight <= 1.0, f"--kd-weight must be in [0, 1], got {self.kd_weight}"),
            (self.distill_lr > 0, f"--distill-lr must be > 0, got {self.distill_lr}"),
            (
                self.distill_patch_size is None or 4 <= self.distill_patch_size <= self.patch_size,
                f"--distill-patch-size must be in [4, --patch-size], got {self.distill_patch_size}",
            ),
            (
                self.lr_schedule in LR_SCHEDULES,
                f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got '{self.lr_schedule}'",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["betas"] = tuple(d["betas"])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


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


# ----------------------------------------------------------------------------------------------- model / init


def resolve_spec(name: str) -> ModelSpec:
    """Zoo spec; an LMFN cell pattern without ``@scheme`` (``lka-msm-ifm``) means its default IFF scheme."""
    try:
        return get_spec(name)
    except UnknownModelError:
        if ":" in name or "@" in name:
            raise
        try:
            from lmfn.variants import parse_variant
        except ImportError:
            raise UnknownModelError(f"unknown model '{name}'") from None
        try:
            pattern, scheme = parse_variant(name)
        except ValueError:
            raise UnknownModelError(f"unknown model '{name}'") from None
        return get_spec(f"{pattern}@{scheme}" if "ifm" in pattern else pattern)


@dataclass
class InitReport:
    path: str
    loaded: list[str]
    missing: list[str]  # model tensors the checkpoint lacks (keep their fresh init)
    misshaped: list[str]
    unused: list[str]  # checkpoint tensors the model has no place for
    loaded_params: int
    total_params: int

    def lines(self, limit: int = 6) -> list[str]:
        def few(xs: list[str]) -> str:
            return ", ".join(xs[:limit]) + (f" ... (+{len(xs) - limit})" if len(xs) > limit else "")

        n_model = len(self.loaded) + len(self.missing) + len(self.misshaped)
        out = [
            f"init from {Path(self.path).name}: loaded {len(self.loaded)}/{n_model} tensors "
            f"({self.loaded_params:,}/{self.total_params:,} parameters)"
        ]
        if self.missing:
            out.append(f"  not in checkpoint, kept fresh ({len(self.missing)}): {few(self.missing)}")
        if self.misshaped:
            out.append(f"  shape differs, kept fresh ({len(self.misshaped)}): {few(self.misshaped)}")
        if self.unused:
            out.append(f"  in checkpoint, unused ({len(self.unused)}): {few(self.unused)}")
        return out


def warm_start(model: nn.Module, path: str | Path, keys: tuple[str, ...] = DEFAULT_KEYS) -> InitReport:
    """Copy every checkpoint tensor whose name and shape match a model tensor; report the rest."""
    sd = unwrap_state_dict(read_checkpoint(path), keys)
    own = model.state_dict()
    loaded = [k for k in own if k in sd and sd[k].shape == own[k].shape]
    misshaped = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in sd and k not in loaded
    ]
    missing = [k for k in own if k not in sd]
    unused = [k for k in sd if k not in own]
    if not loaded:
        raise CheckpointMismatchError(
            f"--init {Path(path).name}: no tensor matches the model by name and shape"
        )
    model.load_state_dict({k: sd[k] for k in loaded}, strict=False)
    params = dict(model.named_parameters())
    return InitReport(
        path=str(path),
        loaded=loaded,
        missing=missing,
        misshaped=misshaped,
        unused=unused,
        loaded_params=sum(params[k].numel() for k in loaded if k in params),
        total_params=sum(p.numel() for p in params.values()),
    )


def _ema_avg_fn(decay: float, warmup: bool) -> Callable:
    """AveragedModel multi_avg_fn: ema <- decay*ema + (1-decay)*param (torch's get_ema_multi_avg_fn), with
    an optional (1+n)/(10+n) warm-up of the decay."""

    def fn(ema_params: list[torch.Tensor], params: list[torch.Tensor], n: torch.Tensor | int) -> None:
        d = min(decay, (1 + int(n)) / (10 + int(n))) if warmup else decay
        torch._foreach_lerp_(ema_params, params, 1.0 - d)

    return fn


def weights_digest(model: nn.Module) -> str:
    """sha256 of every state tensor's bytes in name order (to compare ranks / runs)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group (and tear it down)

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """torchrun's environment -> an initialised process group (nccl for CUDA, gloo for CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return Dist(rank, world, local)
    backend = "nccl" if device.startswith("cuda") and dist.is_nccl_available() else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return Dist(rank, world, local, owns_group=True)


def _pick_device(device: str, d: Dist) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and d.world > 1:
        return torch.device("cuda", d.local_rank)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return dev


# ----------------------------------------------------------------------------------------------- state files


def _atomic_save(obj: object, path: Path) -> None:
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


def _rng_state(device: torch.device) -> dict:
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


def _set_rng_state(st: dict, device: torch.device) -> None:
    torch.set_rng_state(st["torch"])
    kind, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = st["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in st and device.type == "cuda":
        torch.cuda.set_rng_state(st["cuda"], device)


def read_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training state to resume: {path} does not exist")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointMismatchError(f"cannot read training state {path}: {type(e).__name__}: {e}") from None
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT:
        raise CheckpointMismatchError(f"{path} is not an lmfn-bench training state")
    return st


# ----------------------------------------------------------------------------------------------- trainer


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


class Trainer:
    """Everything one training run holds; :meth:`run` is the loop. Also used by benchmarks/bench_train.py."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module | None = None,
        echo: Callable[[str], None] | None = None,
        on_data: Callable[[int, int, str], None] | None = None,
        resume: bool = False,
    ) -> None:
        self.dist = setup_distributed(
            cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.echo = (echo or (lambda m: print(m, flush=True))) if self.dist.main else (lambda m: None)
        self.out = Path(cfg.out)
        state = None
        if resume:
            state = read_state(self.out / STATE_FILE)
            saved = TrainConfig.from_json(state["config"])
            if (saved.model, saved.scale) != (cfg.model, cfg.scale):
                raise ValueError(
                    f"--resume: {self.out} holds a {saved.model} x{saved.scale} run, "
                    f"not {cfg.model} x{cfg.scale}"
                )
        self.cfg = cfg
        self.device = _pick_device(cfg.device, self.dist)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        # seeds: every rank builds the same initial weights (DDP broadcasts rank 0's anyway)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)

        self.spec = resolve_spec(cfg.model) if model is None else None
        self.raw = model if model is not None else self.spec.builder(cfg.scale)
        self.input_range = self.spec.input_range if self.spec else 1.0
        self.init_report: InitReport | None = None
        if cfg.init and state is None:
            self.init_report = warm_start(self.raw, cfg.init)
            for line in self.init_report.lines():
                self.echo(line)
        self.raw.to(self.device).train()
        self.ema = AveragedModel(
            self.raw, multi_avg_fn=_ema_avg_fn(cfg.ema, cfg.ema_warmup), use_buffers=True
        )
        self.ema.eval()
        self.net: nn.Module = self.raw
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # no BatchNorm in these nets: no per-forward buffer broadcast keeps forward collective-free
            self.net = nn.parallel.DistributedDataParallel(self.raw, device_ids=ids, broadcast_buffers=False)
        self.opt = self._optimizer()
        self.loss_fn = nn.L1Loss()
        self._teacher: nn.Module | None = None

        self.iteration = 0
        self.samples_seen = 0
        self.elapsed = 0.0  # training-loop seconds over all sessions (the --max-minutes budget)
        self.curve: list[tuple[int, float]] = []
        self.last_ckpt_iter: int | None = None
        if state is not None:
            self._restore(state)
            self.echo(f"resumed {self.out / STATE_FILE} at iteration {self.iteration}")

        hr_patch = cfg.patch_size * cfg.scale
        if self.dist.world > 1 and not self.dist.main:
            dist.barrier()  # rank 0 fills the LR cache first; the others then read it
        self.images = load_images(cfg.train_data, cfg.scale, hr_patch, on_image=on_data, warn=self.echo)
        if self.dist.world > 1 and self.dist.main:
            dist.barrier()
        self.dataset = PatchDataset(self.images, cfg.scale, cfg.patch_size, cfg.seed)
        self.val_dataset: str | None = None  # "none": no validation and no final eval (plumbing runs)
        if (cfg.val_dataset or "").lower() != "none":
            default = "Set5" if "Set5" in available_datasets(cfg.data_root) else "Default"
            self.val_dataset = canonical_dataset(cfg.val_dataset or default)

    # -- pieces

    def _optimizer(self) -> torch.optim.Optimizer:
        from timm.optim import Adan

        return Adan(
            self.raw.parameters(), lr=self.cfg.lr, betas=self.cfg.betas, weight_decay=self.cfg.weight_decay
        )

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
        pin = self.device.type == "cuda"
        loader = DataLoader(
            self.dataset if dataset is None else dataset,
            batch_sampler=sampler,
            num_workers=self.cfg.workers,
            pin_memory=pin,
            persistent_workers=False,
            prefetch_factor=4 if self.cfg.workers else None,
        )
        for lr, hr in loader:
            yield lr.to(self.device, non_blocking=pin), hr.to(self.device, non_blocking=pin)

    def forward_loss(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        sr = self.net(lr)
        loss = self.loss_fn(sr, hr)
        w = self.cfg.kd_weight
        if w:
            with torch.no_grad():
                target = self.teacher()(lr)
            loss = (1.0 - w) * loss + w * self.loss_fn(sr, target)
        return loss

    def teacher(self) -> nn.Module:
        """``--distill-teacher`` holding the ``--init`` checkpoint exactly, frozen (built once)."""
        if self._teacher is None:
            cfg = self.cfg
            net = load_into(resolve_spec(cfg.distill_teacher).builder(cfg.scale), cfg.init)
            self._teacher = net.to(self.device).eval().requires_grad_(False)
        return self._teacher

    def lr_now(self) -> float:
        """The lr of the coming step: constant or cosine-annealed to 0 at ``iters``, times an optional linear
        warm-up over ``warmup_iters``. A function of the iteration alone, so ``--resume`` continues it."""
        cfg, i = self.cfg, self.iteration
        factor = min(1.0, (i + 1) / cfg.warmup_iters) if cfg.warmup_iters else 1.0
        if cfg.lr_schedule == "cosine":
            factor *= 0.5 * (1.0 + math.cos(math.pi * min(i, cfg.iters) / cfg.iters))
        return cfg.lr * factor

    def apply(self, loss: torch.Tensor) -> None:
        """Backward, optimizer step, EMA update."""
        lr = self.lr_now()  # cfg.lr itself under the paper's constant schedule
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update_parameters(self.raw)

    def step(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """One whole optimisation step (single process); returns the loss, detached."""
        loss = self.forward_loss(lr, hr)
        self.apply(loss)
        return loss.detach()

    def _restore(self, st: dict) -> None:
        self.raw.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["optimizer"])
        self.iteration = int(st["iteration"])
        self.samples_seen = int(st["samples_seen"])
        self.elapsed = float(st.get("elapsed", 0.0))
        self.curve = [tuple(c) for c in st.get("curve", [])]
        self.last_ckpt_iter = self.iteration
        rngs = st["rng"]
        if len(rngs) == self.dist.world:
            _set_rng_state(rngs[self.dist.rank], self.device)
        else:  # another world size: the data order is still exact; model-side randomness is reseeded
            self.echo(f"resume: state from {len(rngs)} process(es), now {self.dist.world}; RNGs reseeded")
            torch.manual_seed(self.cfg.seed + self.iteration + self.dist.rank)

    def save(self) -> None:
        """Write the BasicSR-layout model file and the full training state (rank 0; every rank must call)."""
        rng = _rng_state(self.device)
        rngs = [rng]
        if self.dist.world > 1:
            rngs = [None] * self.dist.world
            dist.all_gather_object(
                rngs, {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in rng.items()}
            )
        if not self.dist.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        ema_sd = {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()}
        model_sd = {k: v.detach().cpu() for k, v in self.raw.state_dict().items()}
        _atomic_save({"params": model_sd, "params_ema": ema_sd}, self.out / MODEL_FILE)
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
        _atomic_save(state, self.out / STATE_FILE)
        self.last_ckpt_iter = self.iteration
        self.log({"event": "checkpoint", "iter": self.iteration, "file": MODEL_FILE})

    def log(self, rec: dict) -> None:
        if not self.dist.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        rec = {"time": round(time.time(), 3), **rec}
        with open(self.out / LOG_FILE, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def validate(self, dataset: str | None = None, model: nn.Module | None = None) -> EvalResult:
        """EMA weights (or ``model``) on a benchmark set (basicsr protocol); the training model is untouched."""
        model = model if model is not None else self.ema.module
        res = evaluate_model(
            model,
            dataset or self.val_dataset,
            self.cfg.scale,
            self.cfg.data_root,
            "basicsr",
            self.input_range,
            self.device,
        )
        model.to(self.device)
        return res

    def _row(self, res: EvalResult, kind: str, ckpt_hash: str) -> dict:
        name = self.spec.name if self.spec else type(self.raw).__name__
        family = self.spec.family if self.spec else "user"
        return {
            "kind": kind,
            "model": name,
            "variant": name if family == "lmfn" else "",
            "scale": self.cfg.scale,
            "dataset": res.dataset,
            "protocol": res.protocol,
            "psnr": res.psnr,
            "ssim": res.ssim,
            "n_images": res.n_images,
            "metrics": {"per_image": res.per_image, "seconds": res.seconds},
            "source": "trained",
            "checkpoint": str((self.out / MODEL_FILE).resolve()),
            "checkpoint_hash": ckpt_hash,
            "device_key": "",
            "device": provenance.device_name(self.device),
            "extra": {
                "profile": self.cfg.profile,
                "iters": self.iteration,
                "iteration": self.iteration,
                "family": family,
                "init": self.cfg.init or "",
                "init_distill": self.cfg.init_distill,
                "distill_teacher": self.cfg.distill_teacher or "",
                "kd_weight": self.cfg.kd_weight,
                "lr_schedule": self.cfg.lr_schedule,
                "run": str(self.out.resolve()),
                "train_data": self.cfg.train_data,
                "input_range": self.input_range,
            },
        }

    # -- the loop

    def run(self, on_step: Callable[[int, int, dict], None] | None = None) -> TrainResult:
        cfg, d = self.cfg, self.dist
        store = Store(cfg.store) if (cfg.store and d.main) else None
        reason = "done"
        budget = cfg.max_minutes * 60.0 if cfg.max_minutes else math.inf
        self.log(
            {
                "event": "start",
                "iter": self.iteration,
                "world_size": d.world,
                "device": str(self.device),
                "images": len(self.images),
                "config": cfg.to_json(),
            }
        )
        if cfg.init_distill and self.init_report is not None:  # a fresh warm-started run, not a resume
            self.distill_new_blocks(on_step)
        t_session = time.perf_counter()
        elapsed0 = self.elapsed
        t_window, n_window, loss_window = time.perf_counter(), 0, 0.0
        rate = 0.0
        batches = self.batches()
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
                flags = torch.tensor(
                    [
                        float(loss.detach()),
                        float(stop.signum is not None or lr is None),
                        float(d.main and self.elapsed >= budget),
                    ],
                    dtype=torch.float64,
                )
                if d.world > 1:
                    flags = flags.to(self.device)
                    dist.all_reduce(flags)
                    flags = flags.cpu()
                    flags[0] /= d.world
                mean_loss = float(flags[0])
                if not math.isfinite(mean_loss):
                    where = (
                        f"the last good checkpoint {self.out / MODEL_FILE} (iteration {self.last_ckpt_iter})"
                        if self.last_ckpt_iter is not None
                        else "no checkpoint was written yet"
                    )
                    self.log({"event": "nonfinite", "iter": self.iteration + 1, "loss": str(mean_loss)})
                    raise NonFiniteLossError(
                        f"loss became {mean_loss} at iteration {self.iteration + 1}; stopped without "
                        f"saving it. Kept {where}. Try a lower --lr."
                    )
                if lr is not None and flags[1] == 0:
                    self.apply(loss)
                    self.iteration += 1
                    self.samples_seen += cfg.batch_size
                    n_window += 1
                    loss_window += mean_loss
                if flags[1] > 0:
                    reason = "signal"
                    break
                now = time.perf_counter()
                if self.iteration % cfg.log_every == 0 or self.iteration == cfg.iters:
                    rate = n_window / max(now - t_window, 1e-9)
                    self.log(
                        {
                            "event": "step",
                            "iter": self.iteration,
                            "loss": loss_window / max(n_window, 1),
                            "lr": self.opt.param_groups[0]["lr"],  # the last step's
                            "it_per_s": rate,
                            "elapsed": self.elapsed,
                        }
                    )
                    t_window, n_window, loss_window = now, 0, 0.0
                over = flags[2] > 0
                last = self.iteration == cfg.iters or over
                if (
                    last
                    or self.iteration % cfg.ckpt_every == 0
                    or (cfg.val_every and self.iteration % cfg.val_every == 0)
                ):
                    self._checkpoint_and_validate(
                        store,
                        validate=bool(
                            cfg.val_every and self.iteration % cfg.val_every == 0 and self.val_dataset
                        )
                        and not last,
                    )
                if on_step is not None and d.main:
                    on_step(
                        self.iteration,
                        cfg.iters,
                        {
                            "loss": mean_loss,
                            "it_per_s": rate,
                            "psnr": self.curve[-1][1] if self.curve else None,
                        },
                    )
                if over:
                    reason = "budget"
                    break
            if reason == "signal":
                self.save()
                name = signal.Signals(stop.signum).name if stop.signum else "signal"
                self.log({"event": "stop", "iter": self.iteration, "reason": name})
                self.echo(f"{name}: saved iteration {self.iteration} to {self.out}; continue with --resume")
        final: list[dict] = []
        if reason != "signal":
            final = self._finish(store)
        if d.world > 1:
            digests = [None] * d.world
            dist.all_gather_object(digests, weights_digest(self.raw))
            self.log({"event": "ranks", "iter": self.iteration, "weight_digests": digests})
        self.log({"event": "end", "iter": self.iteration, "reason": reason, "elapsed": self.elapsed})
        if d.owns_group:
            dist.barrier()
            dist.destroy_process_group()
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

    def distill_new_blocks(self, on_step: Callable[[int, int, dict], None] | None = None) -> list[str]:
        """Warm-start aid (ours, not the paper's): before end-to-end training, train each top-level block that
        ``--init`` left partly fresh to reproduce the same block of the checkpoint's own network (the teacher),
        fed the teacher's input to that block (L1, Adam ``distill_lr``, ``init_distill`` steps).

        Why: LMFN from LKDN keeps 3 of 8 blocks whole; with its 5 MSM/IFM cells fresh it starts at Set5 x4
        20.0 dB (LKDN 32.4) and end-to-end training spends a short budget climbing back. Matching blocks
        locally needs one teacher forward and no gradient through the rest of the net. Counts against ``max_minutes``; returns the blocks.
        """
        cfg, rep, d = self.cfg, self.init_report, self.dist
        t0 = time.perf_counter()
        teacher = self.teacher()
        fresh = [k.split(" ")[0] for k in rep.missing + rep.misshaped]
        blocks = [n for n, _ in self.raw.named_children() if any(k.startswith(n + ".") for k in fresh)]
        t_blocks = dict(teacher.named_children())
        if not blocks or any(n not in t_blocks for n in blocks):
            raise ValueError(
                f"--init-distill: the fresh blocks ({', '.join(blocks) or 'none'}) must exist by name in "
                f"--distill-teacher {cfg.distill_teacher}"
            )
        seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

        def capture(name: str) -> Callable:
            def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
                seen[name] = (args[0], out)

            return hook

        hooks = [t_blocks[n].register_forward_hook(capture(n)) for n in blocks]
        params = [p for n in blocks for p in getattr(self.raw, n).parameters()]
        opt = torch.optim.Adam(params, lr=cfg.distill_lr)
        self.echo(f"distilling {', '.join(blocks)} from {cfg.distill_teacher} for {cfg.init_distill} steps")
        patch = cfg.distill_patch_size or cfg.patch_size
        batches = self.batches(dataset=PatchDataset(self.images, cfg.scale, patch, cfg.seed))
        for step in range(1, cfg.init_distill + 1):
            lr, _ = next(batches)
            with torch.no_grad():
                teacher(lr)
            loss = sum(F.l1_loss(getattr(self.raw, n)(seen[n][0]), seen[n][1]) for n in blocks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if d.world > 1:  # the same average DDP would take
                for p in params:
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= d.world
            opt.step()
            self.samples_seen += cfg.batch_size  # end-to-end training continues with fresh samples
            value = float(loss.detach())
            if step % cfg.log_every == 0 or step == cfg.init_distill:
                self.log({"event": "distill", "step": step, "loss": value})
            if on_step is not None and d.main:
                on_step(step, cfg.init_distill, {"loss": value, "phase": "distill"})
        batches.close()
        for h in hooks:
            h.remove()
        self.elapsed += time.perf_counter() - t0
        if self.val_dataset and d.main:
            res = self.validate(model=self.raw)
            self.raw.train()
            self.log({"event": "distill_val", "dataset": res.dataset, "psnr": res.psnr, "ssim": res.ssim})
            self.echo(f"after distillation: {res.dataset} x{cfg.scale} {res.psnr:.3f} dB / {res.ssim:.4f}")
        return blocks

    def _checkpoint_and_validate(self, store: Store | None, validate: bool) -> None:
        self.save()
        if validate and self.dist.main:
            res = self.validate()
            self.curve.append((self.iteration, res.psnr))
            self.log(
                {
                    "event": "val",
                    "iter": self.iteration,
                    "dataset": res.dataset,
                    "psnr": res.psnr,
                    "ssim": res.ssim,
                }
            )
            self.echo(
                f"iter {self.iteration}: EMA {res.dataset} x{self.cfg.scale} "
                f"{res.psnr:.3f} dB / {res.ssim:.4f}"
            )
            if store is not None:
                store.add(self._row(res, "train", file_sha256(self.out / MODEL_FILE)))

    def _finish(self, store: Store | None) -> list[dict]:
        """Last checkpoint is written; EMA eval -> a last "train" row and the final "eval" rows."""
        if not self.dist.main:
            return []
        ckpt_hash = file_sha256(self.out / MODEL_FILE)
        rows = []
        wanted = self.cfg.final_eval or ([self.val_dataset] if self.val_dataset else [])
        sets = [canonical_dataset(s) for s in wanted]
        for ds in dict.fromkeys([*([self.val_dataset] if self.val_dataset else []), *sets]):
            res = self.validate(ds)
            if ds == self.val_dataset:
                self.curve.append((self.iteration, res.psnr))
                self.log(
                    {
                        "event": "val",
                        "iter": self.iteration,
                        "dataset": ds,
                        "psnr": res.psnr,
                        "ssim": res.ssim,
                    }
                )
                if store is not None:
                    store.add(self._row(res, "train", ckpt_hash))
            if ds in sets:
                row = self._row(res, "eval", ckpt_hash)
                self.log(
                    {
                        "event": "final",
                        "iter": self.iteration,
                        "dataset": ds,
                        "psnr": res.psnr,
                        "ssim": res.ssim,
                    }
                )
                self.echo(
                    f"final EMA {ds} x{self.cfg.scale}: {res.psnr:.3f} dB / {res.ssim:.4f} "
                    f"after {self.iteration} iterations ({self.elapsed / 60:.1f} min)"
                )
                rows.append(store.add(row) if store is not None else row)
        # the final state again, now with the completed curve in it
        st_path = self.out / STATE_FILE
        st = read_state(st_path)
        st["curve"] = [list(c) for c in self.curve]
        _atomic_save(st, st_path)
        return rows


def resume_config(out: str | Path, **overrides: Any) -> TrainConfig:
    """The saved config of the run in ``out`` with the given (non-None) overrides, e.g. more ``iters``."""
    st = read_state(Path(out) / STATE_FILE)
    cfg = TrainConfig.from_json(st["config"])
    for k, v in overrides.items():
        if v is not None and k not in ("model", "scale", "profile"):
            setattr(cfg, k, v)
    cfg.out = str(out)
    cfg.validate()
    return cfg


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    model: nn.Module | None = None,
    echo: Callable[[str], None] | None = None,
    on_step: Callable[[int, int, dict], None] | None = None,
    on_data: Callable[[int, int, str], None] | None = None,
) -> TrainResult:
    """Train per ``cfg`` (``model`` replaces the zoo build, for tests); see the module docstring."""
    if not cfg.train_data:
        cfg.train_data = resolve_sources(None, cfg.data_root)
    if resume and cfg.init:
        raise ValueError("--resume continues a run; --init starts a new one: give only one of them")
    try:
        trainer = Trainer(cfg, model=model, echo=echo, on_data=on_data, resume=resume)
    except DataError:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    return trainer.run(on_step)
