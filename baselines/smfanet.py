"""SMFANet and SMFANet+ (Zheng et al., "SMFANet: A Lightweight Self-Modulation Feature Aggregation Network
for Efficient Image Super-Resolution", ECCV 2024).

Reimplemented from the paper and the structure of the official code (github.com/Zheng-MJ/SMFANet,
``basicsr/archs/SMFANet_arch.py``); parameter names follow it so the official ``params`` checkpoints load
strictly. SMFANet: 36 channels, 8 blocks; SMFANet+: 48 channels, 12 blocks; FFN expansion 2 in both.

The self-modulation branch pools to 1/8 of the input and takes the variance over the whole image, so the
output of any pixel depends on the whole image: evaluate without tiling (``whole_image=True``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmfn.blocks import pixelshuffle_upsampler


class DMlp(nn.Module):
    """Local detail estimation: DW 3x3 (dim -> hidden) + 1x1, GELU, 1x1 back to dim."""

    def __init__(self, dim: int, growth_rate: float = 2.0) -> None:
        super().__init__()
        hidden = int(dim * growth_rate)
        # depthwise with channel multiplier hidden/dim, then pointwise mixing
        self.conv_0 = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, padding=1, groups=dim),
            nn.Conv2d(hidden, hidden, 1),
        )
        self.act = nn.GELU()
        self.conv_1 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_1(self.act(self.conv_0(x)))


class PCFN(nn.Module):
    """Partial convolution-based feed-forward network: 1x1 expand, a 3x3 conv on the first ``p_rate`` of the
    hidden channels only, 1x1 back."""

    def __init__(self, dim: int, growth_rate: float = 2.0, p_rate: float = 0.25) -> None:
        super().__init__()
        self.hidden_dim = int(dim * growth_rate)
        self.p_dim = int(self.hidden_dim * p_rate)
        self.conv_0 = nn.Conv2d(dim, self.hidden_dim, 1)
        self.conv_1 = nn.Conv2d(self.p_dim, self.p_dim, 3, padding=1)
        self.act = nn.GELU()
        self.conv_2 = nn.Conv2d(self.hidden_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv_0(x))
        # split/concat rather than the official in-place slice write at eval: same numbers, autograd-safe
        head, tail = x.split([self.p_dim, self.hidden_dim - self.p_dim], dim=1)
        return self.conv_2(torch.cat([self.act(self.conv_1(head)), tail], dim=1))


class SMFA(nn.Module):
    """Self-modulation feature aggregation: a non-local branch (1/8 max-pool -> DW conv, modulated by the
    per-channel spatial variance, gates the full-resolution features) plus a local DMlp branch."""

    def __init__(self, dim: int = 36, down_scale: int = 8) -> None:
        super().__init__()
        self.linear_0 = nn.Conv2d(dim, dim * 2, 1)
        self.linear_1 = nn.Conv2d(dim, dim, 1)
        self.linear_2 = nn.Conv2d(dim, dim, 1)
        self.lde = DMlp(dim, 2)
        self.dw_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.gelu = nn.GELU()
        self.down_scale = down_scale
        # learnable mix of pooled features (alpha) and the variance statistic ("belt": the official spelling)
        self.alpha = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.belt = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h, w = f.shape[-2:]
        y, x = self.linear_0(f).chunk(2, dim=1)
        x_s = self.dw_conv(F.adaptive_max_pool2d(x, (h // self.down_scale, w // self.down_scale)))
        x_v = torch.var(
            x, dim=(-2, -1), keepdim=True
        )  # unbiased, as torch.var's default in the official code
        gate = self.gelu(self.linear_1(x_s * self.alpha + x_v * self.belt))
        x_l = x * F.interpolate(gate, size=(h, w), mode="nearest")
        return self.linear_2(x_l + self.lde(y))


class FMB(nn.Module):
    """Feature modulation block: SMFA and PCFN, each on channel-L2-normalised input, with residuals."""

    def __init__(self, dim: int, ffn_scale: float = 2.0) -> None:
        super().__init__()
        self.smfa = SMFA(dim)
        self.pcfn = PCFN(dim, ffn_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.smfa(F.normalize(x)) + x
        return self.pcfn(F.normalize(x)) + x


class SMFANet(nn.Module):
    """3x3 conv -> ``n_blocks`` FMBs (+ global residual) -> 3x3 conv to 3*s^2 -> PixelShuffle."""

    def __init__(
        self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4
    ) -> None:
        super().__init__()
        self.scale = upscaling_factor
        self.to_feat = nn.Conv2d(3, dim, 3, padding=1)
        self.feats = nn.Sequential(*[FMB(dim, ffn_scale) for _ in range(n_blocks)])
        self.to_img = pixelshuffle_upsampler(dim, 3, upscaling_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.to_feat(x)
        return self.to_img(self.feats(x) + x)


def smfanet(scale: int) -> SMFANet:
    return SMFANet(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=scale)


def smfanet_plus(scale: int) -> SMFANet:
    return SMFANet(dim=48, n_blocks=12, ffn_scale=2.0, upscaling_factor=scale)


_PAPER = "Zheng et al., SMFANet, ECCV 2024"

MODEL_SPECS = [
    {
        "name": "smfanet",
        "build": smfanet,
        "family": "baseline",
        "paper": _PAPER,
        "published_name": "SMFANet",
        "checkpoints": {s: f"SMFANet_DF2K_100w_x{s}SR.pth" for s in (2, 3, 4)},
        "checkpoint_keys": ("params", "params_ema"),
        "whole_image": True,
        "description": "SMFANet (36 ch, 8 FMBs), official DF2K weights",
    },
    {
        # '+' is awkward in file names and shells, so the zoo name spells it out
        "name": "smfanet-plus",
        "build": smfanet_plus,
        "family": "baseline",
        "paper": _PAPER,
        "published_name": "SMFANet+",
        "checkpoints": {s: f"SMFANet_plus_DF2K_100w_x{s}SR.pth" for s in (2, 3, 4)},
        "checkpoint_keys": ("params", "params_ema"),
        "whole_image": True,
        "description": "SMFANet+ (48 ch, 12 FMBs), official DF2K weights",
    },
]
