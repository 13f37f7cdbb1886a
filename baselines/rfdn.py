"""RFDN: Residual Feature Distillation Network for Lightweight Image Super-Resolution
(Liu et al., ECCVW 2020).

Two configurations share one implementation (structure and parameter names from github.com/njulj/RFDN,
RFDN.py and block.py):

- ``rfdn``: the paper's model (48 channels, 6 RFDBs, contrast-aware channel attention as in IMDN); the
  published 534K / 541K / 550K at x2 / x3 / x4 come out only with CCA at reduction 4 (reduction 16 gives
  544K at x4), so that is what we build. Its weights are not public; it is here to be trained.
- ``rfdn-aim``: E-RFDN, the AIM 2020 efficient-SR winner whose x4 weights are the repo's ``RFDN_AIM.pth``
  (50 channels, 4 RFDBs, enhanced spatial attention, 433,448 params). It was trained on 0-255 input (the
  repo's ``uint2tensor4`` divides by 1.0), hence ``input_range`` 255 in its spec.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmfn.blocks import CCALayer, DistillationTrunk

__all__ = ["ESA", "RFDB", "RFDN", "rfdn", "rfdn_aim"]

LRELU_SLOPE = 0.05


def _conv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int | None = None
) -> nn.Conv2d:
    """Conv with bias, 'same' padding unless given (RFDN's ``conv_layer``)."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride, kernel_size // 2 if padding is None else padding
    )


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet): 1x1 squeeze to c/4, strided conv + 7x7/3 max-pool for a large
    receptive field, convs at that low resolution, bilinear back up, + a 1x1 shortcut, 1x1 expand, sigmoid."""

    def __init__(self, n_feats: int) -> None:
        super().__init__()
        f = n_feats // 4
        self.conv1 = _conv(n_feats, f, 1)
        self.conv_f = _conv(f, f, 1)
        self.conv_max = _conv(f, f, 3)
        self.conv2 = _conv(f, f, 3, stride=2, padding=0)
        self.conv3 = _conv(f, f, 3)
        self.conv3_ = _conv(f, f, 3)
        self.conv4 = _conv(f, n_feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.conv1(x)
        low = F.max_pool2d(self.conv2(squeezed), kernel_size=7, stride=3)
        low = F.relu(self.conv_max(low))
        low = self.conv3_(F.relu(self.conv3(low)))
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(up + self.conv_f(squeezed)))


class RFDB(nn.Module):
    """Residual feature distillation block: three stages of (1x1 distillation conv | shallow residual block
    3x3 conv + identity), a final 3x3 conv, concat of the four distilled parts, 1x1 fuse, attention.

    The official block has no identity around the whole block (the SRBs carry the residuals); we keep that.
    """

    def __init__(self, in_channels: int, attention: str = "esa", cca_reduction: int = 4) -> None:
        super().__init__()
        self.dc = in_channels // 2  # distilled channels: half, per the official code
        self.rc = in_channels  # the refined path keeps the full width
        self.c1_d = _conv(in_channels, self.dc, 1)
        self.c1_r = _conv(in_channels, self.rc, 3)
        self.c2_d = _conv(self.rc, self.dc, 1)
        self.c2_r = _conv(self.rc, self.rc, 3)
        self.c3_d = _conv(self.rc, self.dc, 1)
        self.c3_r = _conv(self.rc, self.rc, 3)
        self.c4 = _conv(self.rc, self.dc, 3)
        self.act = nn.LeakyReLU(LRELU_SLOPE, inplace=True)
        self.c5 = _conv(self.dc * 4, in_channels, 1)
        self.attention = attention
        if attention == "esa":
            self.esa = ESA(in_channels)
        elif attention == "cca":
            self.cca = CCALayer(in_channels, reduction=cca_reduction)
        else:
            raise ValueError(f"attention must be 'esa' or 'cca', got {attention!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distilled = []
        refined = x
        for dist, ref in ((self.c1_d, self.c1_r), (self.c2_d, self.c2_r), (self.c3_d, self.c3_r)):
            distilled.append(self.act(dist(refined)))
            refined = self.act(ref(refined) + refined)  # shallow residual block
        distilled.append(self.act(self.c4(refined)))
        fused = self.c5(torch.cat(distilled, dim=1))
        return self.esa(fused) if self.attention == "esa" else self.cca(fused)


class RFDN(DistillationTrunk):
    """RFDN: the IMDN distillation trunk with ``num_modules`` RFDBs (``B1``..)."""

    def __init__(
        self,
        in_nc: int = 3,
        nf: int = 50,
        num_modules: int = 4,
        out_nc: int = 3,
        upscale: int = 4,
        attention: str = "esa",
    ) -> None:
        blocks = {f"B{i + 1}": RFDB(nf, attention=attention) for i in range(num_modules)}
        super().__init__(in_nc, nf, out_nc, upscale, blocks)


def rfdn(scale: int) -> RFDN:
    """The paper's RFDN: 48 channels, 6 RFDBs with CCA (534K / 541K / 550K at x2 / x3 / x4)."""
    return RFDN(nf=48, num_modules=6, upscale=scale, attention="cca")


def rfdn_aim(scale: int = 4) -> RFDN:
    """E-RFDN, the AIM 2020 challenge model: 50 channels, 4 RFDBs with ESA (433,448 params at x4)."""
    return RFDN(nf=50, num_modules=4, upscale=scale, attention="esa")


_PAPER = (
    "Liu, Tang, Wu, Residual Feature Distillation Network for Lightweight Image Super-Resolution, ECCVW 2020"
)

MODEL_SPECS = [
    {
        "name": "rfdn",
        "build": rfdn,
        "scales": (2, 3, 4),
        "family": "baseline",
        "paper": _PAPER,
        "published_name": "RFDN",
        "checkpoints": {},  # the paper's weights are not public (only the AIM model is in the repo)
        "input_range": 1.0,
        "protocol": "basicsr",
        "whole_image": True,  # CCA pools mean / std over the whole image
        "description": "RFDN as in the paper: 48 channels, 6 residual feature distillation blocks with "
        "contrast-aware channel attention; no official weights, train it",
    },
    {
        "name": "rfdn-aim",
        "build": rfdn_aim,
        "scales": (4,),
        "family": "baseline",
        "paper": _PAPER + " (E-RFDN, AIM 2020 efficient SR challenge winner)",
        "published_name": None,  # the published RFDN row is the paper model, not this one
        "checkpoints": {4: "RFDN_AIM.pth"},
        "input_range": 255.0,
        "protocol": "basicsr",
        # ESA's stride-2 conv / 7x7-3 max-pool grid is anchored at the image origin and its bilinear
        # upsampling at the image size, so tiles do not reproduce whole-image output exactly
        "whole_image": True,
        "description": "E-RFDN, the AIM 2020 challenge x4 model: 50 channels, 4 RFDBs with enhanced "
        "spatial attention; expects input in 0-255 (official njulj/RFDN weights)",
    },
]
