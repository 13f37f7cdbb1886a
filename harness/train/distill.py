"""Warm start (``--init``) and the teacher-based aids built on it (ours, not the paper's recipe).

- :func:`warm_start` copies every checkpoint tensor whose name and shape match a model tensor, reading the
  file with the model's own checkpoint container keys (``ModelSpec.checkpoint_keys``).
- :func:`build_teacher`: ``--distill-teacher`` holding the ``--init`` checkpoint exactly (``zoo.create``,
  so it too takes [0, 1] input and uses its own container keys), frozen.
- :meth:`Distillation.distill_new_blocks`: before end-to-end training, train each block ``--init`` left partly fresh to
  reproduce the teacher's block of the same name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness import zoo
from harness.checkpoint import DEFAULT_KEYS, read_checkpoint, unwrap_state_dict
from harness.errors import CheckpointMismatchError, UsageError
from harness.evaluate import EvalResult
from harness.train.config import TrainConfig
from harness.train.data import PatchDataset, TrainImage
from harness.train.distributed import Dist, average_gradients

StepCallback = Callable[[int, int, dict], None]


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


def _init_state_dict(model: nn.Module, path: str | Path, name: str | None) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, unwrapped with the container keys of model ``name`` (default: the zoo
    model ``model`` was created as; a model from elsewhere gets the common BasicSR keys)."""
    info = zoo.zoo_info(model)
    name = name or (info.name if info.family != "user" else None)
    if name is None:
        return unwrap_state_dict(read_checkpoint(path), DEFAULT_KEYS)
    return zoo.checkpoint_state_dict(name, path)


def warm_start(model: nn.Module, path: str | Path, name: str | None = None) -> InitReport:
    """Copy every checkpoint tensor whose name and shape match a model tensor; report the rest."""
    sd = _init_state_dict(model, path, name)
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


def build_teacher(cfg: TrainConfig, device: torch.device) -> nn.Module:
    """``--distill-teacher`` holding the ``--init`` checkpoint exactly (strict), frozen, in eval mode."""
    net = zoo.create(cfg.distill_teacher, cfg.scale, checkpoint=cfg.init)
    return net.to(device).eval().requires_grad_(False)


def _capture(teacher: nn.Module, blocks: list[str], seen: dict) -> list:
    """Forward hooks that keep each teacher block's (input, output) of the last teacher forward."""

    def hook_for(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            seen[name] = (args[0], out)

        return hook

    t_blocks = dict(teacher.named_children())
    return [t_blocks[n].register_forward_hook(hook_for(n)) for n in blocks]


class Distillation:
    """Trainer mixin: the teacher (``--kd-weight``, ``--init-distill``) and block-wise distillation."""

    # what it uses of the trainer
    cfg: TrainConfig
    dist: Dist
    device: torch.device
    raw: nn.Module
    init_report: InitReport | None
    images: list[TrainImage]
    samples_seen: int
    elapsed: float
    val_dataset: str | None
    _teacher: nn.Module | None
    echo: Callable[[str], None]
    log: Callable[[dict], None]
    batches: Callable[..., Iterator[tuple[torch.Tensor, torch.Tensor]]]
    validate: Callable[..., EvalResult]

    def teacher(self) -> nn.Module:
        """``--distill-teacher`` holding the ``--init`` checkpoint exactly, frozen (built once)."""
        if self._teacher is None:
            self._teacher = build_teacher(self.cfg, self.device)
        return self._teacher

    def _fresh_blocks(self, teacher: nn.Module) -> list[str]:
        """Top-level blocks that ``--init`` left partly fresh; each must exist by name in the teacher."""
        assert self.init_report is not None
        rep = self.init_report
        fresh = [k.split(" ")[0] for k in rep.missing + rep.misshaped]
        blocks = [n for n, _ in self.raw.named_children() if any(k.startswith(n + ".") for k in fresh)]
        t_blocks = dict(teacher.named_children())
        if not blocks or any(n not in t_blocks for n in blocks):
            raise UsageError(
                f"--init-distill: the fresh blocks ({', '.join(blocks) or 'none'}) must exist by name in "
                f"--distill-teacher {self.cfg.distill_teacher}"
            )
        return blocks

    def distill_new_blocks(self, on_step: StepCallback | None = None) -> list[str]:
        """Warm-start aid (ours, not the paper's): before end-to-end training, train each top-level block that
        ``--init`` left partly fresh to reproduce the same block of the checkpoint's own network (the teacher),
        fed the teacher's input to that block (L1, Adam ``distill_lr``, ``init_distill`` steps).

        Why: LMFN from LKDN keeps 3 of 8 blocks whole; with its 5 MSM/IFM cells fresh it starts at Set5 x4
        20.0 dB (LKDN 32.4) and end-to-end training spends a short budget climbing back. Matching blocks
        locally needs one teacher forward and no gradient through the rest of the net. Counts against
        ``max_minutes``; returns the blocks.
        """
        cfg, d, t0 = self.cfg, self.dist, time.perf_counter()
        teacher = self.teacher()
        blocks = self._fresh_blocks(teacher)
        seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        hooks = _capture(teacher, blocks, seen)
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
            average_gradients(params, d)
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
        self._report_distilled()
        return blocks

    def _report_distilled(self) -> None:
        """Validate the live weights right after distillation (rank 0), so the log shows what it bought."""
        if not (self.val_dataset and self.dist.main):
            return
        res = self.validate(model=self.raw)
        self.raw.train()
        self.log({"event": "distill_val", "dataset": res.dataset, "psnr": res.psnr, "ssim": res.ssim})
        self.echo(f"after distillation: {res.dataset} x{self.cfg.scale} {res.psnr:.3f} dB / {res.ssim:.4f}")
