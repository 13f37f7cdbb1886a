"""ShuffleMixer (Sun, Pan and Tang, "ShuffleMixer: An Efficient ConvNet for Image Super-Resolution",
NeurIPS 2022).

Reimplemented from the paper and the structure of the official code (github.com/sunny2109/ShuffleMixer,
``basicsr/archs/shufflemixer_arch.py``); parameter names follow it (the upsampler really is ``upsapling``) so
official checkpoints would load strictly. Those weights are on Google Drive / Baidu only, not in git.
Paper ("base") configuration from ``options/test/ShuffleMixer/test_base_benchmark_x*.yml``: 64 channels,
depthwise kernel 7, 5 feature-mixing blocks, MLP ratio 2, at every scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """Bias-free LayerNorm over the channels of an NCHW tensor (Restormer's ``BiasFree_LayerNorm``, eps 1e-5).

    The affine weight sits in ``body`` to keep the official key ``normX.body.weight``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.LayerNorm(dim, eps=1e-5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SplitPointMlp(nn.Module):
    """Point-wise MLP (1x1, SiLU, 1x1) on the first half of the channels, the other half passed through,
    then a channel shuffle with 8 groups so the next layer mixes the halves."""

    def __init__(self, dim: int, mlp_ratio: float = 2) -> None:
        super().__init__()
        half = dim // 2
        hidden = int(half * mlp_ratio)
        self.fc = nn.Sequential(nn.Conv2d(half, hidden, 1), nn.SiLU(), nn.Conv2d(hidden, half, 1))
        # the official rearrange 'b (g d) h w -> b (d g) h w', g=8, is exactly a channel shuffle of 8 groups
        self.shuffle = nn.ChannelShuffle(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return self.shuffle(torch.cat([self.fc(a), b], dim=1))


class SMLayer(nn.Module):
    """Shuffle mixing layer: x + MLP(LN(x)), depthwise k x k (no residual), x + MLP(LN(x))."""

    def __init__(self, dim: int, kernel_size: int, mlp_ratio: float = 2) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.norm2 = ChannelLayerNorm(dim)
        self.spatial = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.mlp1 = SplitPointMlp(dim, mlp_ratio)
        self.mlp2 = SplitPointMlp(dim, mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp1(self.norm1(x)) + x
        x = self.spatial(x)
        return self.mlp2(self.norm2(x)) + x


class FMBlock(nn.Module):
    """Feature mixing block: two SMLayers (+ residual), then 3x3 conv to dim+16, SiLU, 1x1 (+ residual)."""

    def __init__(self, dim: int, kernel_size: int, mlp_ratio: float = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(SMLayer(dim, kernel_size, mlp_ratio), SMLayer(dim, kernel_size, mlp_ratio))
        self.conv = nn.Sequential(
            nn.Conv2d(dim, dim + 16, 3, padding=1), nn.SiLU(), nn.Conv2d(dim + 16, dim, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.net(x) + x
        return self.conv(x) + x


class ShuffleMixer(nn.Module):
    """3x3 conv (no bias) -> FMBlocks -> 1x1 + PixelShuffle + SiLU (twice at x4) -> 3x3 conv to RGB, plus the
    bilinear-upsampled input."""

    def __init__(
        self,
        n_feats: int = 64,
        kernel_size: int = 7,
        n_blocks: int = 5,
        mlp_ratio: float = 2,
        upscaling_factor: int = 4,
    ) -> None:
        super().__init__()
        self.scale = upscaling_factor
        self.to_feat = nn.Conv2d(3, n_feats, 3, padding=1, bias=False)
        self.blocks = nn.Sequential(*[FMBlock(n_feats, kernel_size, mlp_ratio) for _ in range(n_blocks)])
        # x4 upsamples in two x2 steps, x2/x3 in one; every step keeps n_feats channels
        steps = (2, 2) if upscaling_factor == 4 else (upscaling_factor,)
        layers: list[nn.Module] = []
        for s in steps:
            layers += [nn.Conv2d(n_feats, n_feats * s * s, 1), nn.PixelShuffle(s), nn.SiLU()]
        self.upsapling = nn.Sequential(*layers)  # official spelling, kept for checkpoint keys
        self.tail = nn.Conv2d(n_feats, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.tail(self.upsapling(self.blocks(self.to_feat(x)))) + base


def shufflemixer(scale: int) -> ShuffleMixer:
    return ShuffleMixer(n_feats=64, kernel_size=7, n_blocks=5, mlp_ratio=2, upscaling_factor=scale)


MODEL_SPECS = [
    {
        "name": "shufflemixer",
        "build": shufflemixer,
        "family": "baseline",
        "paper": "Sun, Pan and Tang, ShuffleMixer, NeurIPS 2022",
        "published_name": "ShuffleMixer",
        "checkpoints": {
            s: f"shufflemixer_base_x{s}.pth" for s in (2, 3, 4)
        },  # names in the official test options
        "checkpoint_keys": ("params_ema", "params"),
        "description": "ShuffleMixer base (64 ch, DW 7x7, 5 blocks); official weights are not in git",
    },
]
