"""Small building blocks shared by LMFN and the baselines (parameter names follow the official code)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BSConvU(nn.Module):
    """Blueprint separable conv, unconstrained (Haase & Amthor 2020): 1x1 pointwise (no bias) then depthwise.

    Parameter names ``pw`` / ``dw`` match BSRN's and LKDN's official code.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        self.pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.dw = nn.Conv2d(
            out_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=out_channels,
            bias=bias,
            padding_mode=padding_mode,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dw(self.pw(x))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dimension of an NCHW tensor (ConvNeXt's ``channels_first`` LayerNorm).

    Biased variance over channels, eps inside the square root, per-channel affine ``weight`` / ``bias``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm on channels-last is one fused kernel and matches the mean/var formula exactly
        return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps).permute(
            0, 3, 1, 2
        )


def pixelshuffle_upsampler(
    in_channels: int, out_channels: int, scale: int, kernel_size: int = 3
) -> nn.Sequential:
    """One conv to ``out_channels * scale**2`` then PixelShuffle (the one-step upsampler of BSRN/LKDN/IMDN)."""
    conv = nn.Conv2d(in_channels, out_channels * scale**2, kernel_size, padding=kernel_size // 2)
    return nn.Sequential(conv, nn.PixelShuffle(scale))
