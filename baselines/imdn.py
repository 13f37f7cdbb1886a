"""IMDN: Lightweight Image Super-Resolution with Information Multi-distillation Network
(Hui et al., ACM MM 2019).

Reimplemented from the structure of the official code (github.com/Zheng222/IMDN, model/architecture.py and
model/block.py). Parameter names follow it, so the official ``IMDN_x{2,3,4}.pth`` files load strictly once the
DataParallel ``module.`` prefix is stripped. Input and output are RGB in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from lmfn.blocks import LRELU_SLOPE, CCALayer, DistillationTrunk, contrast, same_conv

__all__ = ["CCALayer", "IMDModule", "IMDN", "contrast", "imdn"]  # CCA and contrast live in lmfn.blocks (RFDN shares them)

class IMDModule(nn.Module):
    """Information multi-distillation block: three 3x3 convs each split off a quarter of their channels
    (the distilled part) and pass the rest on; a fourth conv makes the last quarter;
    CCA, 1x1 fuse, + input."""

    def __init__(self, in_channels: int, distillation_rate: float = 0.25) -> None:
        super().__init__()
        self.distilled_channels = int(in_channels * distillation_rate)
        self.remaining_channels = in_channels - self.distilled_channels
        dc, rc = self.distilled_channels, self.remaining_channels
        self.c1 = same_conv(in_channels, in_channels, 3)
        self.c2 = same_conv(rc, in_channels, 3)
        self.c3 = same_conv(rc, in_channels, 3)
        self.c4 = same_conv(rc, dc, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        self.c5 = same_conv(dc * 4, in_channels, 1)
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
