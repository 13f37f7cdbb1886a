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

Modules: ``profiles`` (the named recipes), ``config`` (:class:`TrainConfig`, TOML recipes, ``--set``),
``state`` (run-folder files, RNG state, provenance), ``distributed``, ``data`` (patches and sampling), ``distill`` (warm start, teacher,
block-wise distillation), ``validation`` (EMA validation and store rows), ``loop`` (:class:`Trainer`).
"""

from __future__ import annotations

from harness.errors import NonFiniteLossError
from harness.train.config import (
    TrainConfig,
    layered_config,
    load_recipe,
    parse_sets,
    resume_config,
)
from harness.train.data import resolve_sources
from harness.train.distill import InitReport, warm_start
from harness.train.distributed import Dist, setup_distributed
from harness.train.loop import Trainer, TrainResult, train
from harness.train.profiles import LR_SCHEDULES, PROFILES, Profile
from harness.train.state import (
    LOG_FILE,
    MODEL_FILE,
    STATE_FILE,
    STATE_FORMAT,
    read_state,
    run_provenance,
    weights_digest,
)

__all__ = [
    "LOG_FILE",
    "LR_SCHEDULES",
    "MODEL_FILE",
    "PROFILES",
    "STATE_FILE",
    "STATE_FORMAT",
    "Dist",
    "InitReport",
    "NonFiniteLossError",
    "Profile",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "layered_config",
    "load_recipe",
    "parse_sets",
    "read_state",
    "resolve_sources",
    "resume_config",
    "run_provenance",
    "setup_distributed",
    "train",
    "warm_start",
    "weights_digest",
]
