"""The LKDN-style network with a cell placeholder in every building module (LMFN paper, Fig. 2a-b).

With every cell ``lka`` this is exactly LKDN (Xie et al., CVPRW 2023); parameter names follow LKDN's
official code (``fea_conv``, ``B1``..``Bn``, ``c1``, ``c2``, ``upsampler``; inside a block ``c{i}_d``,
``c{i}_r``, ``c4``, ``c5``, ``atten``, ``c6``, ``pixel_norm``) so its checkpoints load with strict=True.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BSConvU, LayerNorm2d, pixelshuffle_upsampler
from .cells import CELLS, DEFAULT_SCHEME, make_cell


class BSConvURep(BSConvU):
    """LKDN-S's training-time BSConvU with identity and per-channel 1x1 branches (``conv: BSConvU_rep``).

    pw(x) + x, then dw(.) + . + rep1x1(.); it needs in_channels == out_channels. The branches could be folded
    into ``dw`` for deployment; we keep them so the official un-reparameterised checkpoint loads as is.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, **kwargs) -> None:
        if in_channels != out_channels:
            raise ValueError("BSConvURep adds its input back, so in_channels must equal out_channels")
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.rep1x1 = nn.Conv2d(out_channels, out_channels, 1, groups=out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw(x) + x
        return self.dw(x) + x + self.rep1x1(x)


class UpsamplerRep(nn.Module):
    """LKDN-S's re-parameterisable upsampler (``upsampler: pixelshuffle_rep``).

    conv1(x) + conv3(x) + conv3x3(conv1x1(x)), then PixelShuffle. The 1x1 -> 3x3 branch is computed on the
    zero-padded input, so its border sees conv1x1's bias, which is how it folds into one 3x3 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int) -> None:
        super().__init__()
        n = out_channels * scale**2
        self.conv1 = nn.Conv2d(in_channels, n, 1)
        self.conv3 = nn.Conv2d(in_channels, n, 3, padding=1)
        self.conv1x1 = nn.Conv2d(in_channels, in_channels * 2, 1)
        self.conv3x3 = nn.Conv2d(in_channels * 2, n, 3)
        self.pixel_shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.conv3x3(self.conv1x1(F.pad(x, (1, 1, 1, 1))))
        return self.pixel_shuffle(self.conv1(x) + self.conv3(x) + seq)


CONVS = {"BSConvU": BSConvU, "BSConvU_rep": BSConvURep}


class BuildingModule(nn.Module):
    """LKDN's LKDB with its attention slot (``atten``) as the cell placeholder (paper Fig. 2b).

    Three distillation stages (1x1 ``c{i}_d`` keeps half the channels, BSConvU ``c{i}_r`` refines; GELU on
    both), BSConvU ``c4`` + GELU, concat, 1x1 ``c5``, CELL, 1x1 ``c6``, channel LayerNorm, + input.
    """

    def __init__(
        self,
        channels: int,
        cell: str = "lka",
        atten_channels: int | None = None,
        scheme: str = DEFAULT_SCHEME,
        conv: str = "BSConvU",
        **cell_kwargs,
    ) -> None:
        super().__init__()
        dc = channels // 2  # distilled channels
        atten_channels = atten_channels or channels
        refine = CONVS[conv]
        self.c1_d = nn.Conv2d(channels, dc, 1)
        self.c1_r = refine(channels, channels, 3)
        self.c2_d = nn.Conv2d(channels, dc, 1)
        self.c2_r = refine(channels, channels, 3)
        self.c3_d = nn.Conv2d(channels, dc, 1)
        self.c3_r = refine(channels, channels, 3)
        self.c4 = BSConvU(channels, dc, 3)  # plain BSConvU even in LKDN-S (as in the official code)
        self.act = nn.GELU()
        self.c5 = nn.Conv2d(dc * 4, atten_channels, 1)
        self.atten = make_cell(cell, atten_channels, scheme, **cell_kwargs)
        self.c6 = nn.Conv2d(atten_channels, channels, 1)
        self.pixel_norm = LayerNorm2d(channels, eps=1e-5)  # LKDN uses nn.LayerNorm(C) on NHWC: eps 1e-5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        r = x
        for d, refine in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(d(r)))
            r = self.act(refine(r))
        distilled.append(self.act(self.c4(r)))
        out = self.atten(self.c5(torch.cat(distilled, dim=1)))
        return self.pixel_norm(self.c6(out)) + x


def expand_pattern(cells: str | Sequence[str], num_blocks: int) -> list[str]:
    """A cell pattern ("lka-msm-ifm" or a sequence) repeated cyclically over ``num_blocks`` blocks."""
    pattern = cells.split("-") if isinstance(cells, str) else list(cells)
    bad = [c for c in pattern if c not in CELLS]
    if not pattern or bad:
        raise ValueError(f"unknown cell(s) {bad or pattern!r}; valid cells: {', '.join(CELLS)}")
    return [pattern[i % len(pattern)] for i in range(num_blocks)]


class LMFN(nn.Module):
    """LKDN-style SR network whose building modules hold the cells of ``cells`` (cycled over the blocks).

    Input (B, 3, h, w) in [0, 1] -> (B, 3, h*s, w*s). ``cells="lka"`` is LKDN; ``cells="lka-msm-ifm"`` with
    ``scheme="mr"`` is LMFN. ``conv="BSConvU_rep"`` and ``upsampler="pixelshuffle_rep"`` give LKDN-S's
    training-time blocks. ``cell_kwargs`` go to the MSM cells (``kernel_size``, ``extend_scope``, ``morph``).
    """

    def __init__(
        self,
        upscale: int = 4,
        num_feat: int = 56,
        num_blocks: int = 8,
        cells: str | Sequence[str] = ("lka", "msm", "ifm"),
        scheme: str = DEFAULT_SCHEME,
        num_atten: int | None = None,
        num_in: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        conv: str = "BSConvU",
        upsampler: str = "pixelshuffledirect",
        **cell_kwargs,
    ) -> None:
        super().__init__()
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {', '.join(CONVS)}, got {conv!r}")
        self.upscale = upscale
        self.num_in = num_in
        self.cells = expand_pattern(cells, num_blocks)
        self.scheme = scheme
        self.fea_conv = BSConvU(num_in_ch * num_in, num_feat, 3)
        self.block_names = [f"B{i + 1}" for i in range(num_blocks)]
        for name, cell in zip(self.block_names, self.cells, strict=True):
            block = BuildingModule(num_feat, cell, num_atten, scheme, conv, **cell_kwargs)
            self.add_module(name, block)  # top-level B1..Bn, as the official state dicts name them
        self.c1 = nn.Conv2d(num_feat * num_blocks, num_feat, 1)
        self.GELU = nn.GELU()  # parameter-free; named as in LKDN for a faithful module tree
        self.c2 = BSConvU(num_feat, num_feat, 3)
        if upsampler == "pixelshuffledirect":
            self.upsampler = pixelshuffle_upsampler(num_feat, num_out_ch, upscale)
        elif upsampler == "pixelshuffle_rep":
            self.upsampler = UpsamplerRep(num_feat, num_out_ch, upscale)
        else:
            raise ValueError(
                f"upsampler must be 'pixelshuffledirect' or 'pixelshuffle_rep', got {upsampler!r}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the RGB input repeated num_in times (12 channels): LKDN's cheap way to widen the first BSConvU
        feat = self.fea_conv(x.repeat(1, self.num_in, 1, 1))
        outs, h = [], feat
        for name in self.block_names:
            h = getattr(self, name)(h)
            outs.append(h)
        trunk = self.GELU(self.c1(torch.cat(outs, dim=1)))
        return self.upsampler(self.c2(trunk) + feat)
