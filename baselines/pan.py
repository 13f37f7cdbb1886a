"""PAN: Efficient Image Super-Resolution Using Pixel Attention (Zhao et al., ECCVW 2020).

Reimplemented from the structure of the official code (github.com/zhaohengyuan1/PAN,
codes/models/archs/PAN_arch.py, test options test_PANx{2,3,4}.yml: nf 40, unf 24, nb 16). Parameter names
follow it, so the official ``PANx{2,3,4}_DF2K.pth`` state dicts load strictly. Input and output in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PA", "PAConv", "SCPA", "PAN", "pan"]

LRELU_SLOPE = 0.2


class PA(nn.Module):
    """Pixel attention: a 1x1 conv + sigmoid gives a C x H x W gate multiplied onto the input."""

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(nf, nf, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class PAConv(nn.Module):
    """Pixel-attention conv: a 3x3 conv (``k3``) gated by sigmoid(1x1 conv ``k2`` of the input),
    then a 3x3 conv ``k4``."""

    def __init__(self, nf: int, k_size: int = 3) -> None:
        super().__init__()
        pad = (k_size - 1) // 2
        self.k2 = nn.Conv2d(nf, nf, 1)
        self.k3 = nn.Conv2d(nf, nf, k_size, padding=pad, bias=False)
        self.k4 = nn.Conv2d(nf, nf, k_size, padding=pad, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k4(self.k3(x) * torch.sigmoid(self.k2(x)))


class SCPA(nn.Module):
    """Self-calibrated block with pixel attention: two 1x1-squeezed branches (plain 3x3 conv | PAConv),
    concat, 1x1 back to ``nf``, + input. Convs here carry no bias, as in the official block."""

    def __init__(self, nf: int, reduction: int = 2, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        width = nf // reduction
        self.conv1_a = nn.Conv2d(nf, width, 1, bias=False)
        self.conv1_b = nn.Conv2d(nf, width, 1, bias=False)
        # a one-element Sequential only to keep the official key name ``k1.0.weight``
        self.k1 = nn.Sequential(
            nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        )
        self.PAConv = PAConv(width)
        self.conv3 = nn.Conv2d(width * reduction, nf, 1, bias=False)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lrelu(self.k1(self.lrelu(self.conv1_a(x))))
        b = self.lrelu(self.PAConv(self.lrelu(self.conv1_b(x))))
        return self.conv3(torch.cat([a, b], dim=1)) + x


class PAN(nn.Module):
    """PAN: 3x3 head, ``nb`` SCPA blocks, 3x3 trunk conv + head; then upsampling by nearest interpolation
    followed by conv + pixel attention + conv (one x2/x3 stage, or two x2 stages for x4), 3x3 to RGB, plus
    the bilinearly upsampled input as a global residual."""

    def __init__(
        self, in_nc: int = 3, out_nc: int = 3, nf: int = 40, unf: int = 24, nb: int = 16, scale: int = 4
    ) -> None:
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"PAN supports scales 2, 3, 4, got {scale}")
        self.scale = scale
        self.conv_first = nn.Conv2d(in_nc, nf, 3, padding=1)
        self.SCPA_trunk = nn.Sequential(*[SCPA(nf, reduction=2) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upconv1 = nn.Conv2d(nf, unf, 3, padding=1)
        self.att1 = PA(unf)
        self.HRconv1 = nn.Conv2d(unf, unf, 3, padding=1)
        if scale == 4:
            self.upconv2 = nn.Conv2d(unf, unf, 3, padding=1)
            self.att2 = PA(unf)
            self.HRconv2 = nn.Conv2d(unf, unf, 3, padding=1)
        self.conv_last = nn.Conv2d(unf, out_nc, 3, padding=1)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE, inplace=True)

    def _up(
        self, x: torch.Tensor, factor: int, upconv: nn.Module, att: nn.Module, hrconv: nn.Module
    ) -> torch.Tensor:
        x = upconv(F.interpolate(x, scale_factor=factor, mode="nearest"))
        return self.lrelu(hrconv(self.lrelu(att(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.SCPA_trunk(fea))
        if self.scale == 4:  # two x2 stages
            fea = self._up(fea, 2, self.upconv1, self.att1, self.HRconv1)
            fea = self._up(fea, 2, self.upconv2, self.att2, self.HRconv2)
        else:
            fea = self._up(fea, self.scale, self.upconv1, self.att1, self.HRconv1)
        # the global skip is bilinear (not bicubic), align_corners=False, exactly as the official forward
        skip = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return self.conv_last(fea) + skip


def pan(scale: int) -> PAN:
    """The paper's PAN (40 channels, 16 SCPA blocks, 24 upsampling channels) for x``scale``."""
    return PAN(nf=40, unf=24, nb=16, scale=scale)


MODEL_SPECS = [
    {
        "name": "pan",
        "build": pan,
        "scales": (2, 3, 4),
        "family": "baseline",
        "paper": "Zhao et al., Efficient Image Super-Resolution Using Pixel Attention, ECCVW 2020",
        "published_name": "PAN",
        "checkpoints": {2: "PANx2_DF2K.pth", 3: "PANx3_DF2K.pth", 4: "PANx4_DF2K.pth"},
        "input_range": 1.0,
        "protocol": "basicsr",
        "whole_image": False,  # convs, nearest and bilinear resizes only: overlapping tiles reproduce it
        "description": "PAN, 40 channels, 16 self-calibrated pixel-attention blocks, nearest+conv "
        "upsampling with pixel attention and a bilinear global skip (official zhaohengyuan1/PAN weights)",
    }
]
