"""How each zoo architecture is recognised from a state dict, in the style of spandrel's architecture
descriptors: a few signature keys claim the state dict, then the configuration (channels, blocks, scale,
upsampler, cell pattern ...) is read off tensor shapes and mapped to the zoo entries it can be.

A detector returns ``None`` (not this architecture) or a list of :class:`Candidate` (usually one). Several
candidates mean the shapes leave a choice open (PAN x2 vs x3: nearest-neighbour upsampling has no weights);
:mod:`harness.detect` then decides with a hint or reports the ambiguity. Detection never trusts itself alone:
every candidate is built and its state dict compared key by key and shape by shape before it is accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Candidate:
    name: str  # zoo name
    scale: int
    config: dict = field(default_factory=dict, compare=False)  # what was read off the shapes (for `inspect`)
    deciding: tuple[str, ...] = ()  # the keys the decision was read from


def _dim(sd: StateDict, key: str, axis: int = 0) -> int:
    return int(sd[key].shape[axis])


def _has(sd: StateDict, *keys: str) -> bool:
    return all(k in sd for k in keys)


def _count(sd: StateDict, pattern: str) -> int:
    """How many distinct indices ``(\\d+)`` in ``pattern`` occur among the keys (blocks of a Sequential)."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def _shuffle_scale(out_channels: int, colors: int = 3) -> int | None:
    """The factor of a PixelShuffle fed ``out_channels`` = colors * s^2 (None if it is not one)."""
    s = math.isqrt(max(out_channels // colors, 0))
    return s if s > 1 and colors * s * s == out_channels else None


def _one(name: str, scale: int | None, config: dict, *deciding: str) -> list[Candidate] | None:
    return [Candidate(name, scale, config, deciding)] if scale else None


# ----------------------------------------------------------------------------------------------------------
# LMFN family (LKDN, LKDN-S, every cell pattern and IFF scheme)


def _cell_of(sd: StateDict, block: str, dim: int) -> tuple[str, tuple[str, ...]]:
    """The cell in ``block``'s placeholder and, for IFM, its IFF scheme(s) the keys allow."""
    a = f"{block}.atten."
    if f"{a}pointwise.weight" in sd:
        return "lka", ()
    if f"{a}mfr.0.dsc_conv_x.weight" in sd:
        return "msm", ()
    if f"{a}iff.lka_l.pointwise.weight" in sd:
        # same tensors, the branches wired differently; mr-cross saves a marker buffer (lmfn/cells.py)
        return "ifm", ("mr-cross",) if f"{a}iff.cross" in sd else ("mr",)
    if f"{a}iff.lka.pointwise.weight" in sd:  # whole tensor (cascade) or one half of it (parallel)
        return "ifm", ("cascade",) if _dim(sd, f"{a}iff.lka.pointwise.weight") == dim else ("parallel",)
    return "?", ()


def detect_lmfn(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "fea_conv.pw.weight", "B1.c1_d.weight", "B1.c5.weight", "c1.weight") or not any(
        k.startswith("B1.atten.") for k in sd
    ):
        return None
    from lmfn.cells import DEFAULT_SCHEME
    from lmfn.network import expand_pattern
    from lmfn.variants import PATTERNS

    feat, blocks = _dim(sd, "fea_conv.pw.weight"), _count(sd, r"^B(\d+)\.")
    atten = _dim(sd, "B1.c5.weight")
    cells, schemes = zip(*(_cell_of(sd, f"B{i + 1}", atten) for i in range(blocks)), strict=True)
    rep = "upsampler.conv3.weight" in sd  # LKDN-S: re-parameterisable refiners and upsampler
    up = "upsampler.conv3.weight" if rep else "upsampler.0.weight"
    scale = _shuffle_scale(_dim(sd, up)) if up in sd else None
    pattern = next((p for p in PATTERNS if expand_pattern(p, blocks) == list(cells)), "-".join(cells))
    config = {"channels": feat, "blocks": blocks, "cells": pattern, "upsampler": "pixelshuffle_rep" if rep
              else "pixelshuffle"}  # fmt: skip
    deciding = ("fea_conv.pw.weight", f"B1..B{blocks}.atten.*", up)
    if rep:
        return _one("lkdn-s", scale, config, *deciding) if (feat, blocks) == (42, 5) else []
    if (feat, blocks) != (56, 8) or pattern not in PATTERNS:
        return []  # an LKDN-like network the zoo has no entry for
    if "ifm" not in pattern:
        # the lka pattern is LKDN itself (the zoo's lkdn and lka are one network; lkdn has the published rows)
        return _one("lkdn" if pattern == "lka" else pattern, scale, config, *deciding)
    allowed = set.intersection(*(set(s) for c, s in zip(cells, schemes, strict=True) if c == "ifm"))
    order = sorted(allowed, key=lambda s: (s != DEFAULT_SCHEME, s))
    iff_keys = (*deciding, "B*.atten.iff.lka* / iff.cross")
    return (
        [Candidate(f"{pattern}@{s}", scale, {**config, "iff": s}, iff_keys) for s in order] if scale else None
    )


# ----------------------------------------------------------------------------------------------------------
# baselines


def detect_bsrn(sd: StateDict) -> list[Candidate] | None:
    key = "upsampler.upsampleOneStep.0.weight"
    if not _has(sd, "fea_conv.pw.weight", "B1.esa.conv1.weight", key):
        return None
    cfg = {"channels": _dim(sd, "fea_conv.pw.weight"), "blocks": _count(sd, r"^B(\d+)\.")}
    return (
        _one("bsrn", _shuffle_scale(_dim(sd, key)), cfg, "B1.esa.*", key)
        if cfg == {"channels": 64, "blocks": 8}
        else []
    )


def detect_imdn(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "fea_conv.weight", "IMDB1.c1.weight", "upsampler.0.weight"):
        return None
    cfg = {"channels": _dim(sd, "fea_conv.weight"), "blocks": _count(sd, r"^IMDB(\d+)\.")}
    return _one("imdn", _shuffle_scale(_dim(sd, "upsampler.0.weight")), cfg, "IMDB*", "upsampler.0.weight")


def detect_rfdn(sd: StateDict) -> list[Candidate] | None:
    """RFDN (paper: 48 ch, CCA in the blocks) vs E-RFDN, the AIM 2020 model (50 ch, ESA in the blocks)."""
    if not _has(sd, "fea_conv.weight", "B1.c1_d.weight", "LR_conv.weight", "upsampler.0.weight"):
        return None
    aim = "B1.esa.conv1.weight" in sd
    cfg = {"channels": _dim(sd, "fea_conv.weight"), "blocks": _count(sd, r"^B(\d+)\."),
           "attention": "esa" if aim else "cca"}  # fmt: skip
    scale = _shuffle_scale(_dim(sd, "upsampler.0.weight"))
    return _one("rfdn-aim" if aim else "rfdn", scale, cfg, "fea_conv.weight", "B1.esa.* / B1.cca.*")


def detect_pan(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "conv_first.weight", "SCPA_trunk.0.conv1_a.weight", "conv_last.weight"):
        return None
    cfg = {"channels": _dim(sd, "conv_first.weight"), "blocks": _count(sd, r"^SCPA_trunk\.(\d+)\.")}
    if "upconv2.weight" in sd:
        return [Candidate("pan", 4, cfg, ("upconv2.weight",))]
    # x2 and x3 differ only in the (weight-free) nearest-neighbour upsampling factor
    return [Candidate("pan", s, cfg, ("upconv1.weight", "no upconv2")) for s in (2, 3)]


def detect_vapsr(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "conv_first.weight", "body.0.atten_branch.pointwise.weight", "conv_body.weight"):
        return None
    feat, blocks = _dim(sd, "conv_first.weight"), _count(sd, r"^body\.(\d+)\.")
    groups = feat // _dim(sd, "conv_body.weight", 1)
    last = next((k for k in ("upsampler.3.weight", "upsampler.2.weight") if k in sd), None)
    scale = _shuffle_scale(_dim(sd, last)) if last == "upsampler.2.weight" else 4 if last else None
    cfg = {"channels": feat, "blocks": blocks, "body_groups": groups,
           "upsampler": "two-step" if last == "upsampler.3.weight" else "one-step"}  # fmt: skip
    deciding = ("conv_first.weight", "body.N", "conv_body.weight", str(last))
    if (feat, blocks, groups) == (32, 11, 2):
        return _one("vapsr-s", scale, cfg, *deciding)
    # x2/x3: 20 blocks with a one-step upsampler; x4: 21 blocks with a two-step one (official files)
    return _one("vapsr", scale, cfg, *deciding) if feat == 48 and blocks in (20, 21) else []


def detect_smfanet(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "to_feat.weight", "feats.0.smfa.alpha", "to_img.0.weight"):
        return None
    cfg = {"channels": _dim(sd, "to_feat.weight"), "blocks": _count(sd, r"^feats\.(\d+)\.")}
    name = {(36, 8): "smfanet", (48, 12): "smfanet-plus"}.get((cfg["channels"], cfg["blocks"]))
    scale = _shuffle_scale(_dim(sd, "to_img.0.weight"))
    return _one(name, scale, cfg, "to_feat.weight", "feats.N", "to_img.0.weight") if name else []


def detect_safmn(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "to_feat.weight", "feats.0.safm.aggr.weight", "to_img.0.weight"):
        return None
    ntire = "norm.gamma" in sd  # the NTIRE 2023 entry: GRN in front, bias-free blocks
    cfg = {"channels": _dim(sd, "to_feat.weight"), "blocks": _count(sd, r"^feats\.(\d+)\."), "ntire": ntire}
    scale = _shuffle_scale(_dim(sd, "to_img.0.weight"))
    return _one("safmn-ntire" if ntire else "safmn", scale, cfg, "norm.gamma", "to_img.0.weight")


def detect_shufflemixer(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "to_feat.weight", "upsapling.0.weight", "tail.weight"):  # sic: the official key
        return None
    feat = _dim(sd, "to_feat.weight")
    cfg = {"channels": feat, "blocks": _count(sd, r"^blocks\.(\d+)\.")}
    scale = 4 if "upsapling.3.weight" in sd else _shuffle_scale(_dim(sd, "upsapling.0.weight"), feat)
    return _one("shufflemixer", scale, cfg, "upsapling.*")


def detect_span(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "conv_1.sk.weight", "block_1.c1_r.sk.weight", "upsampler.0.weight"):
        return None
    feat = _dim(sd, "conv_1.sk.weight")
    cfg = {"channels": feat, "blocks": _count(sd, r"^block_(\d+)\.")}
    name = {52: "span", 48: "span-s"}.get(feat)
    scale = _shuffle_scale(_dim(sd, "upsampler.0.weight"))
    return _one(name, scale, cfg, "conv_1.sk.weight", "upsampler.0.weight") if name else []


def detect_ngswin(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "shallow_extract.conv1.weight", "to_target.before_shuffle.weight"):
        return None
    cfg = {"channels": _dim(sd, "shallow_extract.conv1.weight"),
           "encoder_blocks": [_count(sd, rf"^encoder_layer{i}\.blocks\.(\d+)\.") for i in (1, 2, 3)]}  # fmt: skip
    key = "to_target.before_shuffle.weight"
    return _one("ngswin", _shuffle_scale(_dim(sd, key)), cfg, "shallow_extract.*", key)


def detect_divanet(sd: StateDict) -> list[Candidate] | None:
    if not _has(sd, "entry_1.weight_v", "b1.rb1.DiVA.conv_h.weight", "upsample.up.body.0.weight_v"):
        return None
    feat = _dim(sd, "entry_1.weight_v")
    cfg = {"channels": feat, "groups": _count(sd, r"^b(\d+)\.")}
    # the upsampler's 3x3 convs are grouped: out = feat * s^2 per step, one step for x2/x3, two for x4
    first = _dim(sd, "upsample.up.body.0.weight_v")
    scale = 4 if "upsample.up.body.3.weight_v" in sd else math.isqrt(first // feat)
    return _one("divanet", scale if scale in (2, 3, 4) else None, cfg, "upsample.up.body.*")


# zoo-first order; a state dict claimed by one detector is never offered to the next
DETECTORS: tuple[tuple[str, Callable[[StateDict], list[Candidate] | None]], ...] = (
    ("LMFN/LKDN", detect_lmfn),
    ("BSRN", detect_bsrn),
    ("IMDN", detect_imdn),
    ("RFDN", detect_rfdn),
    ("PAN", detect_pan),
    ("VapSR", detect_vapsr),
    ("SMFANet", detect_smfanet),
    ("SAFMN", detect_safmn),
    ("ShuffleMixer", detect_shufflemixer),
    ("SPAN", detect_span),
    ("NGswin", detect_ngswin),
    ("DiVANet", detect_divanet),
)
