"""IMDN: Lightweight Image Super-Resolution with Information Multi-distillation Network
(Hui et al., ACM MM 2019).

Reimplemented from the structure of the official code (github.com/Zheng222/IMDN, model/architecture.py and
model/block.py). Parameter names follow it, so the official ``IMDN_x{2,3,4}.pth`` files load strictly once the
DataParallel ``module.`` prefix is stripped. Input and output are RGB in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from lmfn.blocks import pixelshuffle_upsampler

__all__ = ["CCALayer", "IMDModule", "IMDN", "contrast", "imdn"]

# IMDN's convolutions are followed by LeakyReLU with this slope (block.activation's default)
LRELU_SLOPE = 0.05


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """'same'-padded conv with bias, IMDN's ``conv_layer``."""
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


class IMDModule(nn.Module):
    """Information multi-distillation block: three 3x3 convs each split off a quarter of their channels
    (the distilled part) and pass the rest on; a fourth conv makes the last quarter;
    CCA, 1x1 fuse, + input."""

    def __init__(self, in_channels: int, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled_channels = int(in_channels * distillation_rate)
        self.remaining_channels = in_channels - self.distilled_channels
        dc, rc = self.distilled_channels, self.remaining_channels
        self.c1 = _conv(in_channels, in_channels, 3)
        self.c2 = _conv(rc, in_channels, 3)
        self.c3 = _conv(rc, in_channels, 3)
        self.c4 = _conv(rc, dc, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        self.c5 = _conv(dc * 4, in_channels, 1)
        self.cca = CCALayer(dc * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = (self.distilled_channels, self.remaining_channels)
        distilled = []
        rest = x
        for conv in (self.c1, self.c2, self.c3):
            d, rest = torch.split(self.act(conv(rest)), split, dim=1)
            distilled.append(d)
        distilled.append(self.c4(rest))  # no activation on the last stage, as in the official block
        return self.c5(self.cca(torch.cat(distilled, dim=1))) + x


class DistillationTrunk(nn.Module):
    """The IMDN/RFDN body: 3x3 head, named blocks, concat of all block outputs -> 1x1 + LeakyReLU -> 3x3 ->
    + head -> one-step PixelShuffle upsampler. Blocks are attributes (not a ModuleList) so the official key names
    (``IMDB1``.., ``B1``..) line up."""

    def __init__(self, in_nc: int, nf: int, out_nc: int, upscale: int, blocks: dict[str, nn.Module]) -> None:
        super().__init__()
        self.upscale = upscale
        self.fea_conv = _conv(in_nc, nf, 3)
        self.block_names = list(blocks)
        for name, block in blocks.items():
            self.add_module(name, block)
        self.c = nn.Sequential(nn.Conv2d(nf * len(blocks), nf, 1), nn.LeakyReLU(LRELU_SLOPE, inplace=True))
        self.LR_conv = _conv(nf, nf, 3)
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


class IMDN(DistillationTrunk):
    """IMDN: the distillation trunk with ``num_modules`` IMDBs (``IMDB1``..)."""

    def __init__(
        self, in_nc: int = 3, nf: int = 64, num_modules: int = 6, out_nc: int = 3, upscale: int = 4
    ) -> None:
        blocks = {f"IMDB{i + 1}": IMDModule(nf) for i in range(num_modules)}
        super().__init__(in_nc, nf, out_nc, upscale, blocks)


def imdn(scale: int) -> IMDN:
    """The paper's IMDN (64 channels, 6 IMDBs) for x``scale``."""
    return IMDN(upscale=scale)


MODEL_SPECS = [
    {
        "name": "imdn",
        "build": imdn,
        "scales": (2, 3, 4),
        "family": "baseline",
        "paper": "Hui et al., Lightweight Image Super-Resolution with Information Multi-distillation "
        "Network, ACM MM 2019",
        "published_name": "IMDN",
        "checkpoints": {2: "IMDN_x2.pth", 3: "IMDN_x3.pth", 4: "IMDN_x4.pth"},
        "input_range": 1.0,
        "protocol": "basicsr",
        "whole_image": True,  # CCA pools mean / std over the whole image: tiling would change the output
        "description": "IMDN, 64 channels, 6 information multi-distillation blocks with contrast-aware "
        "channel attention (official Zheng222/IMDN weights)",
    }
]
