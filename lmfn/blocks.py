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


# ----------------------------------------------------------------------------------------------------------
# IMDN / RFDN (Hui et al. 2019; Liu et al. 2020): contrast-aware attention and the distillation trunk


# IMDN's and RFDN's convolutions are followed by LeakyReLU with this slope (block.activation's default)
LRELU_SLOPE = 0.05


def same_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """'same'-padded conv with bias (IMDN's ``conv_layer``)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over the spatial dimensions (population, not sample, variance)."""
    return x.var(dim=(2, 3), unbiased=False, keepdim=True).sqrt()


class CCALayer(nn.Module):
    """Contrast-aware channel attention: (std + mean) -> 1x1 squeeze -> ReLU -> 1x1 excite -> sigmoid gate.

    ``conv_du`` keeps the official Sequential layout (indices 0 and 2 hold the weights).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = contrast(x) + x.mean(dim=(2, 3), keepdim=True)
        return x * self.conv_du(stats)


class DistillationTrunk(nn.Module):
    """The IMDN/RFDN body: 3x3 head, named blocks, concat of all block outputs -> 1x1 + LeakyReLU -> 3x3 ->
    + head -> one-step PixelShuffle upsampler. Blocks are attributes (not a ModuleList) so the official key names
    (``IMDB1``.., ``B1``..) line up."""

    def __init__(self, in_nc: int, nf: int, out_nc: int, upscale: int, blocks: dict[str, nn.Module]) -> None:
        super().__init__()
        self.upscale = upscale
        self.fea_conv = same_conv(in_nc, nf, 3)
        self.block_names = list(blocks)
        for name, block in blocks.items():
            self.add_module(name, block)
        self.c = nn.Sequential(nn.Conv2d(nf * len(blocks), nf, 1), nn.LeakyReLU(LRELU_SLOPE, inplace=True))
        self.LR_conv = same_conv(nf, nf, 3)
        self.upsampler = pixelshuffle_upsampler(nf, out_nc, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.fea_conv(x)
        feats = []
        out = head
        for name in self.block_names:
            out = getattr(self, name)(out)
            feats.append(out)
        body = self.LR_conv(self.c(torch.cat(feats, dim=1))) + head
        return self.upsampler(body)


def is_channels_last(x: torch.Tensor) -> bool:
    """True when ``x`` is laid out channels-last and not also plain NCHW (LMFN's trunk runs channels-last from
    its first LayerNorm on, since the norm works on the NHWC view)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def fresh_add(fresh: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``fresh + x``; without autograd in place on ``fresh``, a just-made output that nothing else holds (the
    same numbers, one full-size buffer fewer: a new 13 MB tensor's first touch cost ~0.6 ms at 2 threads)."""
    return fresh + x if torch.is_grad_enabled() else fresh.add_(x)


def fresh_mul(fresh: torch.Tensor, x: torch.Tensor | float) -> torch.Tensor:
    """``fresh * x``, in place without autograd, as :func:`fresh_add`."""
    return fresh * x if torch.is_grad_enabled() else fresh.mul_(x)


def as_nchw(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a dense NCHW tensor. A single channels-last CPU image goes through the 2-D (pixels, channels)
    -> (channels, pixels) transpose, which torch copies in cache blocks: 2.1 ms at 56x180x320 where
    ``x.contiguous()`` took 13.6 ms (torch 2.14, one thread)."""
    if x.is_contiguous():
        return x
    b, c, h, w = x.shape
    if b != 1 or x.device.type != "cpu" or not is_channels_last(x):
        return x.contiguous()
    out = x.new_empty(x.shape)
    out.view(c, h * w).copy_(x[0].reshape(c, h * w))
    return out


def pointwise(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    channels_last: bool | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """A 1x1 conv (``weight`` (out, in, 1, 1)); the output is channels-last or dense NCHW as ``channels_last``
    says (default: as ``x``), or written into ``out``, a dense NCHW tensor. A single CPU image is one GEMM on
    the (channels, pixels) view of ``x``, whatever its strides: a channel slice of a channels-last tensor is
    read in place and the change of layout rides on the GEMM's transposed operand, not on a copy. oneDNN's
    NCHW 1x1 conv ran slower at 2 threads than at 1 (torch 2.14; 84->14 channels at 180x320: 3.5 ms vs
    1.6 ms, the GEMM 0.9 ms). Equal up to float rounding."""
    b, c, h, w = x.shape
    gemm_path = x.device.type == "cpu" and b == 1
    if out is not None and (not gemm_path or torch.jit.is_tracing()):
        # off the GEMM path, and under the FLOP tracer (fvcore prices mm by exactly two operands): copy in
        return out.copy_(pointwise(x, weight, bias, channels_last=False))
    if not gemm_path:  # the layout is a speed hint for the GEMM path only: no copy here
        return F.conv2d(x, weight, bias)
    if channels_last is None:
        channels_last = is_channels_last(x)
    w2 = weight.view(weight.shape[0], c)
    flat = x[0].reshape(c, h * w)  # a view for NCHW and channels-last strides alike
    # the bias is added after the GEMM, not by addmm, which first fills the fresh output with the broadcast
    # bias: at 2 threads that pass cost about as much as the GEMM (LMFN 1.23 vs 1.30 of LKDN's time per MAC)
    if out is not None or not channels_last:
        res = torch.mm(w2, flat, out=None if out is None else out.view(-1, h * w))
        res = res if bias is None else res.add_(bias.view(-1, 1))
        return res.view(1, -1, h, w)
    # channels-last: (pixels, out) = (pixels, in) @ (in, out)
    res = torch.mm(flat.t(), w2.t())
    res = res if bias is None else res.add_(bias)
    return res.view(1, h, w, -1).permute(0, 3, 1, 2)


class Conv1x1(nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` (same parameters and state-dict names) whose forward is :func:`pointwise`. A module
    rather than a bare function call, so module-hook counters (thop) still see its multiply-adds."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor, channels_last: bool | None = None) -> torch.Tensor:
        return pointwise(x, self.weight, self.bias, channels_last)
