"""DistributedDataParallel under ``torchrun``: the process group and this process's device.

Under torchrun (even with one process: the GPU check's 1-process DDP) -> one process per GPU (nccl) or CPU
process (gloo), the model wrapped in DDP;
``batch_size`` is the global batch, split evenly, and rank ``r`` takes its slice of the same global sample
sequence a single process would draw. Rank 0 alone validates, logs and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from harness.errors import UsageError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group (and tear it down)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def ddp(self) -> bool:
        """A process group exists (torchrun): collectives and the DDP wrapper, even with one process."""
        return self.owns_group or self.world > 1 or (dist.is_available() and dist.is_initialized())


def default_device(device: str) -> str:
    """``auto`` -> ``cuda`` when there is a GPU, else ``cpu``; anything else as given."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def setup_distributed(device: str) -> Dist:
    """torchrun's environment -> an initialised process group (nccl for CUDA, gloo for CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:  # a plain process, not torchrun
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return Dist(rank, world, local)
    backend = "nccl" if device.startswith("cuda") and dist.is_nccl_available() else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend)
    return Dist(rank, world, local, owns_group=True)


def pick_device(device: str, d: Dist) -> torch.device:
    """The torch device of this process (under torchrun: the local rank's GPU); UsageError when absent."""
    device = default_device(device)
    if device == "cuda" and d.ddp:
        return torch.device("cuda", d.local_rank)
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got '{device}'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    return dev


def agree(values: list[float], d: Dist, device: torch.device) -> torch.Tensor:
    """Sum ``values`` over the ranks (one tiny all-reduce; a single process returns them as they are)."""
    flags = torch.tensor(values, dtype=torch.float64)
    if d.ddp:
        flags = flags.to(device)
        dist.all_reduce(flags)
        flags = flags.cpu()
    return flags


def average_gradients(params: list[torch.Tensor], d: Dist) -> None:
    """The same gradient average DDP would take (for steps outside the DDP wrapper)."""
    if not d.ddp:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= d.world


def gather_digests(digest: str, d: Dist) -> list[str]:
    """Every rank's weight digest, in rank order (a collective: every rank must call)."""
    digests: list = [None] * d.world
    dist.all_gather_object(digests, digest)
    return digests


def teardown(d: Dist) -> None:
    if d.owns_group:
        dist.barrier()
        dist.destroy_process_group()
