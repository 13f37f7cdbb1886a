"""SAFMN (Sun et al., "Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution", ICCV 2023)
and its NTIRE 2023 efficient-SR challenge variant.

Reimplemented from the paper and the structure of the official code (github.com/sunny2109/SAFMN,
``basicsr/archs/safmn_arch.py`` and ``NTIRE2023_ESR/models/team15_SAFMN.py``); parameter names follow it so
official checkpoints load strictly.

- ``SAFMN``: the paper model (``options/test/SAFMN/test_benchmark_x*.yml``: dim 36, 8 blocks, ffn 2.0 at every
  scale). Its official weights are not in git, so this build is checked against spandrel's SAFMN instead.
- ``SAFMNNTIRE``: the challenge entry ``team15_SAFMN.pth`` (x4): no LayerNorms in the blocks, bias-free block
  convs, coarser pooling (1/4 .. 1/16 instead of 1/2 .. 1/8), a GRN after the first conv (which normalises
  over the whole image) and a bilinear-upsampled input added to the output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lmfn.blocks import LayerNorm2d, pixelshuffle_upsampler


class CCM(nn.Module):
    """Convolutional channel mixer: 3x3 conv expand, GELU, 1x1 back (the paper's FFN)."""

    def __init__(self, dim: int, growth_rate: float = 2.0, bias: bool = True) -> None:
        super().__init__()
        hidden = int(dim * growth_rate)
        self.ccm = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, padding=1, bias=bias),
            nn.GELU(),
            nn.Conv2d(hidden, dim, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ccm(x)


class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: split channels into ``n_levels`` groups; group 0 gets a DW 3x3
    at full resolution, group i > 0 is max-pooled by 2^(i + pool_shift), DW 3x3, nearest-upsampled back;
    concat, 1x1, GELU, and the result multiplies the input."""

    def __init__(self, dim: int, n_levels: int = 4, bias: bool = True, pool_shift: int = 0) -> None:
        super().__init__()
        self.n_levels = n_levels
        self.pool_shift = pool_shift  # 0 in the paper model, 1 in the NTIRE 2023 entry
        chunk = dim // n_levels
        self.mfr = nn.ModuleList(
            [nn.Conv2d(chunk, chunk, 3, padding=1, groups=chunk, bias=bias) for _ in range(n_levels)]
        )
        self.aggr = nn.Conv2d(dim, dim, 1, bias=bias)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        parts = []
        for i, (xi, conv) in enumerate(zip(x.chunk(self.n_levels, dim=1), self.mfr, strict=True)):
            if i == 0:
                parts.append(conv(xi))
                continue
            f = 2 ** (i + self.pool_shift)
            s = conv(F.adaptive_max_pool2d(xi, (h // f, w // f)))
            parts.append(F.interpolate(s, size=(h, w), mode="nearest"))
        return self.act(self.aggr(torch.cat(parts, dim=1))) * x


class AttBlock(nn.Module):
    """Pre-norm block of the paper model: x + SAFM(LN(x)), then x + CCM(LN(x))."""

    def __init__(self, dim: int, ffn_scale: float = 2.0) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)  # the official channels-first LayerNorm, eps 1e-6
        self.norm2 = LayerNorm2d(dim)
        self.safm = SAFM(dim)
        self.ccm = CCM(dim, ffn_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.safm(self.norm1(x)) + x
        return self.ccm(self.norm2(x)) + x


class SAFMN(nn.Module):
    """The ICCV 2023 model: 3x3 conv -> ``n_blocks`` AttBlocks (+ global residual) -> 3x3 conv ->
    PixelShuffle."""

    def __init__(
        self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4
    ) -> None:
        super().__init__()
        self.scale = upscaling_factor
        self.to_feat = nn.Conv2d(3, dim, 3, padding=1)
        self.feats = nn.Sequential(*[AttBlock(dim, ffn_scale) for _ in range(n_blocks)])
        self.to_img = pixelshuffle_upsampler(dim, 3, upscaling_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_feat(x)
        return self.to_img(self.feats(x) + x)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt V2): x + gamma * (x * N(x)) + beta, N = spatial L2 norm divided
    by its mean over channels."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.linalg.vector_norm(x, ord=2, dim=(2, 3), keepdim=True)
        n = g / (g.mean(dim=1, keepdim=True) + 1e-6)
        return self.gamma * (x * n) + self.beta + x


class NTIREBlock(nn.Module):
    """Block of the NTIRE 2023 entry: x + SAFM(x), x + CCM(x); no norms, bias-free convs, coarser pooling."""

    def __init__(self, dim: int, ffn_scale: float = 2.0) -> None:
        super().__init__()
        self.safm = SAFM(dim, bias=False, pool_shift=1)
        self.ccm = CCM(dim, ffn_scale, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.safm(x) + x
        return self.ccm(x) + x


class SAFMNNTIRE(nn.Module):
    """NTIRE 2023 efficient-SR entry (team 15): 3x3 conv -> GRN -> blocks (no global feature residual) ->
    3x3 conv -> PixelShuffle, plus the bilinear-upsampled input."""

    def __init__(
        self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4
    ) -> None:
        super().__init__()
        self.scale = upscaling_factor
        self.norm = GRN(dim)
        self.to_feat = nn.Conv2d(3, dim, 3, padding=1)
        self.feats = nn.Sequential(*[NTIREBlock(dim, ffn_scale) for _ in range(n_blocks)])
        self.to_img = pixelshuffle_upsampler(dim, 3, upscaling_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        x = self.norm(self.to_feat(x))
        return self.to_img(self.feats(x)) + base


def safmn_config(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """Constructor arguments (dim, n_blocks, ffn_scale, upscaling_factor) of a SAFMN-family state dict."""
    dim = state_dict["to_feat.weight"].shape[0]
    n_blocks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("feats."))
    hidden = state_dict["feats.0.ccm.ccm.0.weight"].shape[0]
    scale = math.isqrt(state_dict["to_img.0.weight"].shape[0] // 3)
    return {"dim": dim, "n_blocks": n_blocks, "ffn_scale": hidden / dim, "upscaling_factor": scale}


def safmn(scale: int) -> SAFMN:
    return SAFMN(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=scale)


def safmn_ntire(scale: int) -> SAFMNNTIRE:
    # configuration read off team15_SAFMN.pth (see safmn_config): 36 ch, 8 blocks, ffn 2.0, x4
    return SAFMNNTIRE(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=scale)


MODEL_SPECS = [
    {
        "name": "safmn",
        "build": safmn,
        "family": "baseline",
        "paper": "Sun et al., SAFMN, ICCV 2023",
        "published_name": "SAFMN",
        "checkpoints": {s: f"SAFMN_DF2K_x{s}.pth" for s in (2, 3, 4)},  # names in the official test options
        "checkpoint_keys": ("params_ema", "params"),
        "description": "SAFMN (36 ch, 8 blocks, ffn 2.0); official weights are not in git",
    },
    {
        "name": "safmn-ntire",
        "build": safmn_ntire,
        "scales": (4,),
        "family": "baseline",
        "paper": "Sun et al., SAFMN, NTIRE 2023 efficient SR challenge entry (team 15)",
        "published_name": None,
        "checkpoints": {4: "team15_SAFMN.pth"},
        "checkpoint_keys": ("params", "params_ema"),
        "whole_image": True,  # GRN normalises by the L2 norm over the whole feature map
        "description": "SAFMN NTIRE 2023 variant (GRN, bias-free blocks, bilinear skip), x4 only",
    },
]
