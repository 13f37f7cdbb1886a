"""The named training recipes (``--profile``): the paper's, and CPU / GPU / plumbing-sized ones."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LR_SCHEDULES", "PROFILES", "Profile"]


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
    # ablation grids (`lmfn-bench ablate`): a budget in iterations, never minutes, so variants are compared at
    # equal training, not equal speed. CPU: 10 networks x 2 seeds in about an hour on 2 cores (one run ~3 min).
    "ablation-cpu": Profile(
        "ablation-cpu",
        iters=300,
        batch_size=8,
        patch_size=24,
        lr=5e-3,
        ema=0.999,
        ema_warmup=True,
        val_every=0,
        ckpt_every=50,
        log_every=10,
    ),
    # GPU: a tenth of the paper's iterations at its batch and patch (~1.5 h a run on one modern GPU)
    "ablation-gpu": Profile(
        "ablation-gpu",
        iters=200_000,
        batch_size=64,
        patch_size=48,
        lr=5e-3,
        ema=0.999,
        val_every=0,
        ckpt_every=5000,
        log_every=100,
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
