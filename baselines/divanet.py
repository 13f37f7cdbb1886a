"""DiVANet (Behjati et al., "Single image super-resolution based on directional variance attention network",
Pattern Recognition 133, 2023), reimplemented from the paper and the official code
(github.com/pbehjatii/DiVANet: ``divanet.py``, ``ops.py``, ``Attention_module.py``).

Layout: mean shift -> weight-normalised 3x3 conv (64 ch) -> three residual attention feature groups (RAFG),
each of three inverted-bottleneck residual blocks whose residual branch also feeds a directional variance
attention (DiVA) -> a feature bank (1x1 over the concatenated block outputs) plus an attention bank (1x1 over
the concatenated DiVA outputs), at group and at network level -> grouped-conv PixelShuffle upsampler ->
3x3 conv -> + bicubic-upsampled input -> inverse mean shift.

Every conv except the DiVA 1x1s is weight-normalised; the state dict uses the names of
``torch.nn.utils.weight_norm`` (``weight_g``, ``weight_v``) that the official checkpoints were saved with. The
frozen mean-shift 1x1 convs are parameters (``requires_grad=False``) as in the official model, so they are in
the state dict and the parameter count (24 of them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DiVANet", "divanet"]

_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # DIV2K mean, as in EDSR


class WNConv2d(nn.Conv2d):
    """Conv2d with weight normalisation over all dims but the output channel: w = g * v / ||v||.

    Same parameters, names and shapes as ``torch.nn.utils.weight_norm(nn.Conv2d(...))`` (deprecated in recent
    torch), written out so the state dict keeps the legacy ``weight_g`` / ``weight_v`` keys.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        v = self.weight.detach()
        del self.weight
        # start from the default conv init with ||w|| folded into g, as weight_norm does at wrap time
        self.weight_g = nn.Parameter(v.flatten(1).norm(dim=1).view(-1, 1, 1, 1).clone())
        self.weight_v = nn.Parameter(v.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.weight_v
        w = v * (self.weight_g / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
        return self._conv_forward(x, w, self.bias)


class MeanShift(nn.Module):
    """Frozen 1x1 conv adding (or subtracting) the RGB mean; kept as a conv for the official keys."""

    def __init__(self, mean_rgb: tuple[float, float, float], sub: bool) -> None:
        super().__init__()
        self.shifter = nn.Conv2d(3, 3, 1)
        sign = -1.0 if sub else 1.0
        with torch.no_grad():
            self.shifter.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.shifter.bias.copy_(sign * torch.tensor(mean_rgb))
        self.shifter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shifter(x)


class DiVAAttention(nn.Module):
    """Directional variance attention: per-channel variance along W (one value per row) and along H (one per
    column), each through a 1x1 conv and a sigmoid, multiplied onto the input.

    The official helpers are named ``stdv_channels_*`` but return the (biased) variance, not its square root;
    we follow the code, which produced the published numbers."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv_h = nn.Conv2d(channels, channels, 1)
        self.conv_w = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var_h = x.var(dim=3, keepdim=True, unbiased=False)  # B, C, H, 1
        var_w = x.var(dim=2, keepdim=True, unbiased=False)  # B, C, 1, W
        return x * self.conv_w(var_w).sigmoid() * self.conv_h(var_h).sigmoid()


class BasicConv2d(nn.Module):
    """Weight-normalised conv + ReLU."""

    def __init__(
        self, in_planes: int, out_planes: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        super().__init__()
        self.conv = WNConv2d(in_planes, out_planes, kernel_size, stride, padding)
        self.LR = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LR(self.conv(x))


class ResidualBlock(nn.Module):
    """1x1 expand (x6) -> ReLU -> 1x1 linear reduce (x0.8) -> 3x3 back to 64.

    Returns (x + branch, DiVA(branch))."""

    def __init__(self, channels: int = 64, expand: int = 6, linear: float = 0.8) -> None:
        super().__init__()
        self.DiVA = DiVAAttention(channels)
        mid = int(channels * linear)
        self.body = nn.Sequential(
            WNConv2d(channels, channels * expand, 1),
            nn.ReLU(inplace=True),
            WNConv2d(channels * expand, mid, 1),
            WNConv2d(mid, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        branch = self.body(x)
        return branch + x, self.DiVA(branch)


class RAFG(nn.Module):
    """Residual attention feature group: three residual blocks; feature bank = 1x1+ReLU over [x, b1, b2, b3],
    attention bank = 1x1+ReLU over the three DiVA outputs; returns (x + both banks, attention bank)."""

    def __init__(self, channels: int = 64, n_blocks: int = 3) -> None:
        super().__init__()
        for i in range(n_blocks):
            self.add_module(f"rb{i + 1}", ResidualBlock(channels))
        self.n_blocks = n_blocks
        self.reduction_1 = BasicConv2d(channels * (n_blocks + 1), channels, 1)
        self.reduction_2 = BasicConv2d(channels * n_blocks, channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, atts = [x], []
        out = x
        for i in range(self.n_blocks):
            out, att = getattr(self, f"rb{i + 1}")(out)
            feats.append(out)
            atts.append(att)
        att_bank = self.reduction_2(torch.cat(atts, dim=1))
        return self.reduction_1(torch.cat(feats, dim=1)) + x + att_bank, att_bank


class _UpsampleBlock(nn.Module):
    """Grouped weight-normalised 3x3 conv -> ReLU -> PixelShuffle, once per factor 2 (x2, x4) or once x3."""

    def __init__(self, channels: int, scale: int, group: int = 4) -> None:
        super().__init__()
        if scale in (2, 4, 8):
            steps = [2] * (scale.bit_length() - 1)
        elif scale in (3, 5):
            steps = [scale]
        else:
            raise ValueError(f"DiVANet upsampler supports x2/x3/x4/x5/x8, not x{scale}")
        layers: list[nn.Module] = []
        for r in steps:
            layers += [
                WNConv2d(channels, r * r * channels, 3, padding=1, groups=group),
                nn.ReLU(inplace=True),
            ]
            layers.append(nn.PixelShuffle(r))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpsampleBlock(nn.Module):
    """Single-scale wrapper (official ``UpsampleBlock(multi_scale=False)``: the block lives under ``up``)."""

    def __init__(self, channels: int, scale: int, group: int = 4) -> None:
        super().__init__()
        self.up = _UpsampleBlock(channels, scale, group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class DiVANet(nn.Module):
    """DiVANet; input RGB in [0, 1], any size. ``group`` is the upsampler's conv groups (official default 4:
    ``Net`` reads ``kwargs.get("group", 4)`` and training passes only ``scale``)."""

    def __init__(self, scale: int = 2, channels: int = 64, n_groups: int = 3, group: int = 4) -> None:
        super().__init__()
        self.scale = scale
        self.n_groups = n_groups
        self.sub_mean = MeanShift(_RGB_MEAN, sub=True)
        self.add_mean = MeanShift(_RGB_MEAN, sub=False)
        self.entry_1 = WNConv2d(3, channels, 3, padding=1)
        for i in range(n_groups):
            self.add_module(f"b{i + 1}", RAFG(channels))
        self.reduction_1 = BasicConv2d(channels * (n_groups + 1), channels, 1)
        self.reduction_2 = BasicConv2d(channels * n_groups, channels, 1)
        self.upsample = UpsampleBlock(channels, scale, group)
        self.exit1 = WNConv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x)
        # global skip: PyTorch bicubic (a=-0.75, no antialias) of the mean-shifted input, as the official code
        size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        skip = F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        f0 = self.entry_1(x)
        feats, atts = [f0], []
        out = f0
        for i in range(self.n_groups):
            out, att = getattr(self, f"b{i + 1}")(out)
            feats.append(out)
            atts.append(att)
        out = self.reduction_1(torch.cat(feats, dim=1)) + f0 + self.reduction_2(torch.cat(atts, dim=1))
        out = self.exit1(self.upsample(out))
        return self.add_mean(out + skip)


def divanet(scale: int) -> DiVANet:
    return DiVANet(scale=scale)


MODEL_SPECS = [
    {
        "name": "divanet",
        "build": divanet,
        "family": "baseline",
        "paper": "Behjati et al., DiVANet, Pattern Recognition 2023",
        "published_name": "DiVANet",
        "checkpoints": {},  # no official weights in ../shared
        # official solver saves {'step', 'model_state_dict', 'optimizer_state_dict', 'best_psnr'}
        "checkpoint_keys": ("model_state_dict", "state_dict", "params_ema", "params"),
        "input_range": 1.0,
        # official calc_psnr: unrounded Y, shave = scale (EDSR style; the closer of our two protocols)
        "protocol": "basicsr",
        "whole_image": True,  # DiVA takes variances over whole rows and columns: tiling changes the output
        "description": "DiVANet (64 ch, 3 RAFGs x 3 residual blocks, DiVA attention, weight norm)",
    },
]
