"""VapSR: VAst-receptive-field Pixel attention network (Zhou et al., ECCV Workshops 2022), and VapSR-S.

Reimplemented from the paper and the structure of the official code (github.com/zhoumumu/VapSR,
``code/vapsr.py``; parameter names as in that file, which are the names stored in ``VapSR_X{2,3,4}.pth`` and
``VapSR-S.pth``). Each official file holds two weight sets; ``params_ema`` is the published model.

Configurations, read off the official files and ``options/train/*.yml``:
- VapSR x2/x3: 48 ch, attention width 64, 20 blocks, upsampler conv(48->56) LReLU conv(56->3s^2) PS(s)
- VapSR x4:    48 ch, attention width 64, 21 blocks, upsampler conv(48->64) PS(2) LReLU conv(16->12) PS(2)
- VapSR-S x4:  32 ch, attention width 64, 11 blocks, body conv with 2 groups, the x4 upsampler above
Input range 0-1, no mean shift.
"""

from __future__ import annotations

import torch
from torch import nn

from lmfn.blocks import LayerNorm2d


class Attention(nn.Module):
    """Vast-receptive-field pixel attention: 1x1 -> 5x5 DW -> 5x5 DW dilation 3 (17x17 field), times input.

    No sigmoid: the attention map multiplies the features directly, as in the official code.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.pointwise = nn.Conv2d(dim, dim, 1)
        self.depthwise = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.depthwise_dilated = nn.Conv2d(dim, dim, 5, padding=6, dilation=3, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.depthwise_dilated(self.depthwise(self.pointwise(x)))


class VAB(nn.Module):
    """Vast-receptive-field attention block: 1x1 up to ``d_atten``, GELU, attention, 1x1 back, + input, LN."""

    def __init__(self, d_model: int, d_atten: int) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(d_model, d_atten, 1)
        self.activation = nn.GELU()
        self.atten_branch = Attention(d_atten)
        self.proj_2 = nn.Conv2d(d_atten, d_model, 1)
        # "pixel normalization" = nn.LayerNorm over channels at each pixel; torch's default eps (1e-5).
        # The official default_init_weights(..., 0.1) call on it is a no-op (it only touches conv/linear/BN).
        self.pixel_norm = LayerNorm2d(d_model, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj_2(self.atten_branch(self.activation(self.proj_1(x))))
        return self.pixel_norm(y + x)


def pixelshuffle_x4(in_channels: int, out_channels: int) -> nn.Sequential:
    """VapSR's x4 tail: conv to 64, PS(2) to 16 ch, LReLU, conv to 4*out, PS(2); weights at 0 and 3."""
    shuffle = nn.PixelShuffle(2)  # parameter-free, so one instance serves both steps
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1),
        shuffle,
        nn.LeakyReLU(negative_slope=0.1, inplace=True),
        nn.Conv2d(16, out_channels * 4, 3, padding=1),
        shuffle,
    )


def pixelshuffle_single(in_channels: int, out_channels: int, scale: int) -> nn.Sequential:
    """VapSR's x2/x3 tail: conv to 56, LReLU, conv to out*s^2, PS(s). Indices 0 and 2 hold weights."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 56, 3, padding=1),
        nn.LeakyReLU(negative_slope=0.1, inplace=True),
        nn.Conv2d(56, out_channels * scale * scale, 3, padding=1),
        nn.PixelShuffle(scale),
    )


class VapSR(nn.Module):
    """conv 3x3 -> ``num_block`` VAB -> conv 3x3 (optionally grouped) -> + shallow feature -> upsampler."""

    def __init__(
        self,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 48,
        num_block: int = 21,
        d_atten: int = 64,
        conv_groups: int = 1,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, padding=1)
        self.body = nn.Sequential(*(VAB(num_feat, d_atten) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, padding=1, groups=conv_groups)
        if scale == 4:
            self.upsampler = pixelshuffle_x4(num_feat, num_out_ch)
        else:
            self.upsampler = pixelshuffle_single(num_feat, num_out_ch, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        return self.upsampler(feat + self.conv_body(self.body(feat)))


def vapsr(scale: int) -> VapSR:
    """VapSR as published: 21 blocks at x4, 20 at x2/x3 (what the official checkpoints hold)."""
    return VapSR(scale=scale, num_feat=48, num_block=21 if scale == 4 else 20, d_atten=64)


def vapsr_s(scale: int = 4) -> VapSR:
    """VapSR-S, the small x4 model (``options/train/VapSR-S.yml``: 32 ch, 11 blocks, 2-group body conv)."""
    if scale != 4:
        raise ValueError(f"VapSR-S exists only at x4, got x{scale}")
    return VapSR(scale=4, num_feat=32, num_block=11, d_atten=64, conv_groups=2)


_PAPER = "Zhou et al., Efficient Image Super-Resolution using Vast-Receptive-Field Attention, ECCVW 2022"

MODEL_SPECS = [
    dict(
        name="vapsr",
        build=vapsr,
        scales=(2, 3, 4),
        family="baseline",
        paper=_PAPER,
        published_name="VapSR",
        checkpoints={s: f"VapSR_X{s}.pth" for s in (2, 3, 4)},
        checkpoint_keys=("params_ema", "params"),  # params_ema is the published model (official README)
        input_range=1.0,
        protocol="basicsr",
        description="48 ch, 20 (x2/x3) or 21 (x4) VAB blocks with 1x1-DW5-DW5d3 pixel attention and pixel LN",
    ),
    dict(
        name="vapsr-s",
        build=vapsr_s,
        scales=(4,),
        family="baseline",
        paper=_PAPER,
        published_name="VapSR-S",
        checkpoints={4: "VapSR-S.pth"},
        checkpoint_keys=("params_ema", "params"),
        input_range=1.0,
        protocol="basicsr",
        description="small VapSR: 32 ch, 11 VAB blocks, 2-group body conv, x4 only",
    ),
]
