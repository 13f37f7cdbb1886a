"""Variant names -> networks, and the zoo registrations (``MODEL_SPECS``) of LKDN, LKDN-S, LMFN and ablations.

A variant name is a cell pattern repeated over the 8 building modules, optionally ``@scheme`` for the IFF
inside IFM cells: ``lka`` (LKDN), ``msm``, ``ifm``, ``lka-msm``, ``lka-ifm``, ``msm-ifm``, ``lka-msm-ifm``
(LMFN), e.g. ``lka-msm-ifm@parallel``. ``lmfn`` = ``lka-msm-ifm@mr``; ``lkdn`` = ``lka``.

:func:`canonical_name` is the one place a variant spelling folds to the name of its network; the zoo registers
each distinct network once under that name (``lmfn`` is an alias, not a second entry).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from .cells import DEFAULT_SCHEME, SCHEMES
from .network import LMFN

PATTERNS = ("lka", "msm", "ifm", "lka-msm", "lka-ifm", "msm-ifm", "lka-msm-ifm")  # the paper's Table 1 rows
ALIASES = {"lmfn": f"lka-msm-ifm@{DEFAULT_SCHEME}", "lkdn": "lka"}


def valid_variants() -> list[str]:
    """Every name :func:`parse_variant` accepts (plain patterns, pattern@scheme, aliases)."""
    return [*ALIASES, *PATTERNS, *(f"{p}@{s}" for p in PATTERNS for s in SCHEMES)]


def parse_variant(name: str) -> tuple[str, str]:
    """``"lka-msm-ifm@parallel"`` -> ``("lka-msm-ifm", "parallel")``; the scheme defaults to ``mr``.

    A scheme on a pattern without ``ifm`` is accepted and has no effect. Unknown names raise ValueError.
    """
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    pattern, _, scheme = key.partition("@")
    scheme = scheme or DEFAULT_SCHEME
    if pattern not in PATTERNS or scheme not in SCHEMES:
        raise ValueError(
            f"unknown LMFN variant {name!r}; valid patterns: {', '.join(PATTERNS)}, each optionally "
            f"@scheme with scheme in {', '.join(SCHEMES)} (default {DEFAULT_SCHEME}); aliases: "
            + ", ".join(f"{a} = {t}" for a, t in ALIASES.items())
        )
    return pattern, scheme


def canonical_name(name: str) -> str:
    """The registered name of a variant's network: ``lmfn`` / ``LKA-MSM-IFM`` -> ``lka-msm-ifm@mr``,
    ``lka@parallel`` -> ``lka`` (the scheme only matters inside IFM cells). Unknown names raise ValueError."""
    pattern, scheme = parse_variant(name)
    return f"{pattern}@{scheme}" if "ifm" in pattern else pattern


def build_variant(name: str, scale: int = 4, **kwargs) -> LMFN:
    """The network for a variant name at ``scale`` (num_feat 56, 8 blocks unless overridden)."""
    pattern, scheme = parse_variant(name)
    return LMFN(upscale=scale, cells=pattern, scheme=scheme, **kwargs)


def lkdn(scale: int = 4) -> nn.Module:
    """LKDN (Xie et al. 2023): 56 channels, 8 LKA blocks."""
    return build_variant("lka", scale)


def lkdn_s(scale: int = 4) -> nn.Module:
    """LKDN-S (NTIRE 2023 efficient SR entry, options/test/LKDN/test_LKDN-S_x4.yml): 42 channels, 5 blocks,
    training-time re-parameterisable BSConvU_rep refiners and the pixelshuffle_rep upsampler; x4 only."""
    return LMFN(
        upscale=scale,
        num_feat=42,
        num_blocks=5,
        cells="lka",
        conv="BSConvU_rep",
        upsampler="pixelshuffle_rep",
    )


_LKDN_PAPER = "LKDN: Large Kernel Distillation Network for Efficient SISR (Xie et al., CVPRW 2023)"
_LMFN_PAPER = "LMFN: Long-Range Multi-Scale Fusion for Efficient SISR (ICASSP 2025)"


def _variant_spec(name: str) -> dict:
    pattern, scheme = parse_variant(name)
    scheme_note = f", IFF scheme {scheme}" if "ifm" in pattern else ""
    spec = {
        "name": name,
        "build": partial(build_variant, name),
        "family": "lmfn",
        "paper": _LMFN_PAPER,
        "description": f"LMFN ablation: cells {pattern} cycled over 8 blocks{scheme_note}",
    }
    if name == ALIASES["lmfn"]:  # the full model: the paper's LMFN (no official weights)
        spec |= {"published_name": "LMFN", "description": f"LMFN (= {name}): cells lka-msm-ifm, IFF {scheme}"}
    return spec


MODEL_SPECS: list[dict] = [
    {
        "name": "lkdn",
        "build": lkdn,
        "family": "baseline",
        "paper": _LKDN_PAPER,
        "published_name": "LKDN",
        "checkpoints": {2: "LKDN_x2.pth", 3: "LKDN_x3.pth", 4: "LKDN_x4.pth"},
        "checkpoint_keys": ("params_ema", "params"),
        "description": "LKDN: 56 channels, 8 LKDB blocks with large kernel attention (= LMFN variant 'lka')",
    },
    {
        "name": "lkdn-s",
        "build": lkdn_s,
        "scales": (4,),
        "family": "baseline",
        "paper": _LKDN_PAPER,
        "published_name": "LKDN-S",
        "checkpoints": {4: "LKDN-S_x4.pth"},
        "checkpoint_keys": ("params_ema", "params"),
        "description": "LKDN-S: 42 channels, 5 blocks, re-parameterisable convs (training-time form)",
    },
    *(_variant_spec(p) for p in PATTERNS if "ifm" not in p),
    *(_variant_spec(f"{p}@{s}") for p in PATTERNS if "ifm" in p for s in SCHEMES),
]
