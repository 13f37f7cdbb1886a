"""Which network a checkpoint holds, read off its keys and tensor shapes (no model name needed).

Order: the zoo's detectors (:mod:`harness.detectors`) first; every candidate they propose is built and must
fit the state dict exactly (keys and shapes). Then spandrel's ~40 architectures, recorded as
``spandrel:<ArchId>``. Candidates left open by the shapes are decided by ``--scale`` and then by an ``x2`` /
``X3`` token in the file name (our choice: official file names carry the scale, e.g. PAN's, whose x2 and x3
weights have the same shapes); two zoo entries that both still fit, or none, is a one-line error naming the
candidates and the keys that decided.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from harness.checkpoint import DETECT_KEYS, describe_mismatch, read_checkpoint, unwrap_report
from harness.detectors import DETECTORS, Candidate, StateDict
from harness.errors import AmbiguousCheckpointError, UnknownArchitectureError, UsageError

SPANDREL = "spandrel"


@dataclass(frozen=True)
class Detection:
    """What a checkpoint was found to be; ``name`` is a zoo name or ``spandrel:<ArchId>``."""

    name: str
    scale: int
    config: dict
    unwrapped: tuple[str, ...]  # container keys / prefixes removed to reach the state dict
    deciding: tuple[str, ...]  # keys the architecture and configuration were read from
    detector: str  # "LMFN/LKDN", "PAN", ... or "spandrel"
    state_dict: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def foreign(self) -> bool:
        return self.name.startswith(f"{SPANDREL}:")


def is_spandrel(name: str | None) -> bool:
    """``--model spandrel`` (force spandrel's detection) or a ``spandrel:<ArchId>`` row name."""
    return name is not None and (name == SPANDREL or name.startswith(f"{SPANDREL}:"))


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict in ``path`` (weights-only read) and the unwrapping steps that found it."""
    return unwrap_report(read_checkpoint(path), DETECT_KEYS)


Builder = Callable[[str, int], nn.Module]  # harness.zoo.build, passed in (the zoo calls detection)


def _fits(cand: Candidate, sd: StateDict, build: Builder) -> bool:
    try:
        return describe_mismatch(build(cand.name, cand.scale), sd) is None
    except UsageError:  # e.g. a scale the entry does not have
        return False


def _scale_in_name(path: Path) -> int | None:
    found = {int(m) for m in re.findall(r"(?i)x([234])(?!\d)", path.stem)}
    return found.pop() if len(found) == 1 else None


def _narrow(fits: list[Candidate], scale: int | None, path: Path) -> list[Candidate]:
    if scale is not None:
        at = [c for c in fits if c.scale == scale]
        if fits and not at:
            have = ", ".join(sorted({f"{c.name} x{c.scale}" for c in fits}))
            raise UsageError(f"checkpoint {path.name} is {have}, not x{scale}")
        return at
    if len({c.scale for c in fits}) > 1 and (hint := _scale_in_name(path)) is not None:
        named = [
            replace(c, deciding=(*c.deciding, f"x{hint} in the file name")) for c in fits if c.scale == hint
        ]
        return named or fits
    return fits


def _zoo_candidates(sd: StateDict, build: Builder) -> tuple[list[tuple[str, Candidate]], list[str]]:
    """(detector, candidate) pairs that fit ``sd`` exactly, and the detectors that claimed it at all."""
    fits, claimed = [], []
    for label, detector in DETECTORS:
        cands = detector(sd)
        if cands is None:
            continue
        claimed.append(label)
        fits += [(label, c) for c in cands if _fits(c, sd, build)]
    return fits, claimed


def _first_keys(sd: StateDict, n: int = 4) -> str:
    return ", ".join(list(sd)[:n]) + (" ..." if len(sd) > n else "")


def detect(
    path: str | Path, build: Builder, scale: int | None = None, *, force_spandrel: bool = False
) -> Detection:
    """Detect the network in checkpoint ``path`` (``scale``: a hint that must agree with the weights); zoo
    candidates are verified with ``build(name, scale)``. Callers go through :func:`harness.zoo.detect`."""
    path = Path(path)
    sd, steps = read_state_dict(path)
    claimed: list[str] = []
    if not force_spandrel:
        pairs, claimed = _zoo_candidates(sd, build)
        kept = _narrow([c for _, c in pairs], scale, path)
        if len(kept) > 1:
            names = ", ".join(f"{c.name} x{c.scale}" for c in kept)
            keys = ", ".join(dict.fromkeys(k for c in kept for k in c.deciding))
            raise AmbiguousCheckpointError(
                f"checkpoint {path.name} fits {len(kept)} zoo entries: {names} (decided by {keys}); "
                "name one with --model (or the scale with --scale)"
            )
        if kept:
            c = kept[0]
            label = next(lbl for lbl, p in pairs if (p.name, p.scale) == (c.name, c.scale))
            return Detection(c.name, c.scale, c.config, tuple(steps), c.deciding, label, sd)
    return _spandrel_detection(path, sd, steps, scale, claimed, force_spandrel)


def _spandrel_detection(
    path: Path, sd: dict, steps: list[str], scale: int | None, claimed: list[str], force: bool
) -> Detection:
    from harness import foreign

    try:
        net = foreign.spandrel_network(sd, scale)
    except UnknownArchitectureError:
        looked = f"looks like {'/'.join(claimed)} but no zoo configuration fits; " if claimed else ""
        who = "spandrel" if force else "no zoo detector or spandrel architecture"
        raise UnknownArchitectureError(
            f"checkpoint {path.name}: unknown architecture ({looked}{who} recognises keys {_first_keys(sd)}); "
            "give --model NAME or module.path:factory"
        ) from None
    config = foreign.describe(net)
    return Detection(f"{SPANDREL}:{net.arch_id}", net.upscale, config, tuple(steps), ("spandrel detect",),
                     SPANDREL, sd)  # fmt: skip
