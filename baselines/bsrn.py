"""BSRN: Blueprint Separable Residual Network (Li et al., CVPRW 2022, NTIRE 2022 efficient-SR).

Reimplemented from the paper and the structure of the official code (github.com/xiaom233/BSRN,
``basicsr/archs/BSRN_arch.py``, configuration ``conv='BSConvU'``, ``upsampler='pixelshuffledirect'``).
Parameter names follow the official code so ``net_g_BSRN_x{2,3,4}.pth`` load with ``strict=True``.

Layout: input stacked 4x (12 ch) -> BSConvU 3x3 -> 8 ESDB -> concat -> 1x1 + GELU -> BSConvU 3x3
-> + shallow feature -> 3x3 conv to 3*s^2 -> PixelShuffle. Input range 0-1, no mean shift.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lmfn.blocks import BSConvU, pixelshuffle_upsampler

ConvFactory = Callable[..., nn.Module]


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet/RFDN) with a pluggable 3x3 conv and activation.

    BSRN uses BSConvU and GELU; RFDN's original uses plain convs and ReLU - same wiring, same names.
    """

    def __init__(
        self, num_feat: int = 64, conv: ConvFactory = BSConvU, act: Callable[[], nn.Module] = nn.GELU
    ) -> None:
        super().__init__()
        f = num_feat // 4
        self.conv1 = nn.Conv2d(num_feat, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.maxPooling = nn.MaxPool2d(kernel_size=7, stride=3)
        self.conv_max = conv(f, f, kernel_size=3, padding=1)
        # strided, unpadded: shrinks the map before pooling so the attention sees a wide context cheaply
        self.conv2 = conv(f, f, kernel_size=3, stride=2, padding=0)
        self.conv3 = conv(f, f, kernel_size=3, padding=1)
        self.conv3_ = conv(f, f, kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(f, num_feat, 1)
        self.sigmoid = nn.Sigmoid()
        self.GELU = act()  # official attribute name, kept although it holds ``act``

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.conv1(x)
        low = self.maxPooling(self.conv2(reduced))
        low = self.GELU(self.conv_max(low))
        low = self.conv3_(self.GELU(self.conv3(low)))
        low = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        mask = self.sigmoid(self.conv4(low + self.conv_f(reduced)))
        return x * mask


class CCALayer(nn.Module):
    """Contrast-aware channel attention (IMDN): squeeze by per-channel std + mean, then an SE bottleneck."""

    def __init__(self, channel: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channel // reduction, channel, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # population std over the spatial dims, as IMDN's stdv_channels computes it
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        return x * self.conv_du(std + mean)


class ESDB(nn.Module):
    """Efficient separable distillation block: three distill/refine stages, concat, 1x1, ESA, CCA, + input."""

    def __init__(self, channels: int = 64, conv: ConvFactory = BSConvU) -> None:
        super().__init__()
        dc = channels // 2  # distilled channels per stage; the refined path keeps the full width
        self.c1_d = nn.Conv2d(channels, dc, 1)
        self.c1_r = conv(channels, channels, kernel_size=3, padding=1)
        self.c2_d = nn.Conv2d(channels, dc, 1)
        self.c2_r = conv(channels, channels, kernel_size=3, padding=1)
        self.c3_d = nn.Conv2d(channels, dc, 1)
        self.c3_r = conv(channels, channels, kernel_size=3, padding=1)
        self.c4 = conv(channels, dc, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.c5 = nn.Conv2d(dc * 4, channels, 1)
        self.esa = ESA(channels, conv)
        self.cca = CCALayer(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        feat = x
        for c_d, c_r in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(c_d(feat)))
            feat = self.act(c_r(feat) + feat)  # residual refinement (the "R" of BSRN's ESDB)
        distilled.append(self.act(self.c4(feat)))
        out = self.c5(torch.cat(distilled, dim=1))
        return self.cca(self.esa(out)) + x


class PixelShuffleDirect(nn.Module):
    """One 3x3 conv to 3*s^2 then PixelShuffle, under the official ``upsampleOneStep`` name."""

    def __init__(self, scale: int, num_feat: int, num_out_ch: int) -> None:
        super().__init__()
        self.upsampleOneStep = pixelshuffle_upsampler(num_feat, num_out_ch, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampleOneStep(x)


class BSRN(nn.Module):
    """BSRN with the paper's configuration (64 channels, 8 ESDB, BSConvU, one-step PixelShuffle)."""

    def __init__(
        self,
        upscale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 8,
    ) -> None:
        super().__init__()
        self.upscale = upscale
        self.num_block = num_block
        # the official net repeats the RGB input 4x so the first BSConvU's pointwise mixes 12 channels
        self.fea_conv = BSConvU(num_in_ch * 4, num_feat, kernel_size=3, padding=1)
        # B1..B8 as separate attributes (not a Sequential): the checkpoint keys are ``B1.*`` ... ``B8.*``
        for i in range(1, num_block + 1):
            self.add_module(f"B{i}", ESDB(num_feat, BSConvU))
        self.c1 = nn.Conv2d(num_feat * num_block, num_feat, 1)
        self.GELU = nn.GELU()
        self.c2 = BSConvU(num_feat, num_feat, kernel_size=3, padding=1)
        self.upsampler = PixelShuffleDirect(upscale, num_feat, num_out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.fea_conv(torch.cat([x, x, x, x], dim=1))
        outs = []
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"B{i}")(feat)
            outs.append(feat)
        trunk = self.GELU(self.c1(torch.cat(outs, dim=1)))
        return self.upsampler(self.c2(trunk) + shallow)


def bsrn(scale: int) -> BSRN:
    """BSRN for ``scale`` (2, 3 or 4) as published."""
    return BSRN(upscale=scale)


MODEL_SPECS = [
    dict(
        name="bsrn",
        build=bsrn,
        scales=(2, 3, 4),
        family="baseline",
        paper="Li et al., Blueprint Separable Residual Network for Efficient Image SR, CVPRW 2022",
        published_name="BSRN",
        checkpoints={s: f"net_g_BSRN_x{s}.pth" for s in (2, 3, 4)},
        checkpoint_keys=("params", "params_ema"),  # the official files hold only ``params``
        input_range=1.0,
        protocol="basicsr",
        description="64 ch, 8 ESDB (BSConvU + ESA + CCA), input stacked 4x, one-step PixelShuffle",
    )
]
