"""SPAN: Swift Parameter-free Attention Network for Efficient Super-Resolution (Wan et al., CVPRW 2024;
NTIRE 2024 efficient-SR winner).

Reimplemented from the structure of the official code (github.com/hongyuanyu/SPAN,
``basicsr/archs/span_arch.py``). Parameter names follow it, so the official ``spanx{2,4}_ch{48,52}.pth``
files (a Google Drive zip, not available here) should load with ``strict=True``: the tests check the key
layout and the outputs against spandrel's SPAN, which loads those files.

Layout: (x - DIV2K mean) * 255 -> Conv3XC -> 6 SPAB -> Conv3XC on the last block -> concat of
[shallow, last (after Conv3XC), block 1, SiLU(first conv of block 6)] -> 1x1 -> 3x3 conv to 3*s^2 ->
PixelShuffle. Input range 0-1; the output is not shifted back (the network learns the 0-1 output directly).

Conv3XC is a re-parameterisable 3x3 conv: while training it is 1x1 (c_in -> 2 c_in) -> 3x3 valid (on a
zero-padded input) -> 1x1 (2 c_out -> c_out) plus a 1x1 shortcut; in eval mode the same map collapses into one
3x3 conv. The official module also stores that fused conv (``eval_conv``, frozen) in the checkpoint.

Parameter counts: papers count the deployed (fused) network, while ``sum(p.numel())`` over the training
module also counts the expansion branches and the frozen ``eval_conv`` copy (2.62M instead of 498K at x4).
:meth:`SPAN.deploy` returns the fused inference network; measure params / FLOPs on that.

Two zoo entries, as the paper names them (48 channels = "SPAN-S", 52 channels = "SPAN"; the official
release has x2 and x4 weights for both, nothing at x3, which we build all the same).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from lmfn.blocks import pixelshuffle_upsampler

__all__ = ["SPAB", "SPAN", "Conv3XC", "span", "span_s"]

# DIV2K RGB mean, subtracted before the x255 scaling (official default ``rgb_mean``)
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class Conv3XC(nn.Module):
    """Re-parameterisable 3x3 conv ("3x expanded conv"); names ``sk``, ``conv.{0,1,2}``, ``eval_conv``.

    ``gain`` is the expansion of the hidden width (official ``gain1``; SPAN always uses 2).
    """

    def __init__(self, c_in: int, c_out: int, gain: int = 2) -> None:
        super().__init__()
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, c_in * gain, 1),
            nn.Conv2d(c_in * gain, c_out * gain, 3),  # valid conv: the input is padded before the 1x1
            nn.Conv2d(c_out * gain, c_out, 1),
        )
        # the fused conv lives in the checkpoint; it is derived from the branches, never trained
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.eval_conv.weight.requires_grad_(False)
        self.eval_conv.bias.requires_grad_(False)
        self.reparameterize()

    @torch.no_grad()
    def fused_weight_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 conv equal to the training branches, by composing the linear maps.

        W[o,i] = sum_{n,m} w3[o,n] w2[n,m] w1[m,i]  (+ the 1x1 shortcut at the kernel centre);
        the bias of the first 1x1 reaches every tap of the 3x3, padded ones included, because the zero
        padding comes before that 1x1 - so it enters through the full 3x3 sum.
        """
        c0, c1, c2 = self.conv
        w1, w2, w3 = c0.weight[:, :, 0, 0], c1.weight, c2.weight[:, :, 0, 0]
        weight = torch.einsum("on,nmhw,mi->oihw", w3, w2, w1)
        weight[:, :, 1, 1] += self.sk.weight[:, :, 0, 0]
        mid_bias = c1.bias + torch.einsum("nmhw,m->n", w2, c0.bias)
        bias = c2.bias + w3 @ mid_bias + self.sk.bias
        return weight, bias

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Write the fused conv into ``eval_conv`` (as the official code does before saving)."""
        weight, bias = self.fused_weight_bias()
        self.eval_conv.weight.copy_(weight)
        self.eval_conv.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        # like the official eval path, fuse from the current branch weights (eval_conv may be stale);
        # computed functionally so it also runs under torch.inference_mode
        weight, bias = self.fused_weight_bias()
        return F.conv2d(x, weight, bias, padding=1)

    def to_conv2d(self) -> nn.Conv2d:
        """A plain 3x3 ``nn.Conv2d`` holding the fused weights (for the deployed network)."""
        weight, bias = self.fused_weight_bias()
        conv = nn.Conv2d(
            weight.shape[1], weight.shape[0], 3, padding=1, device=weight.device, dtype=weight.dtype
        )
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
        return conv


class SPAB(nn.Module):
    """Swift parameter-free attention block: three Conv3XC (SiLU between), attention sigmoid(h) - 0.5
    (origin-symmetric, so it can also suppress), applied to h + input.

    Returns (output, SiLU of the first conv, attention map) as the official block does: the network
    concatenates the second item of block 6. The official SiLU is in-place, so what it returns as "out1"
    is already activated; we return the activated tensor explicitly.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels)
        self.c2_r = Conv3XC(channels, channels)
        self.c3_r = Conv3XC(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.silu(self.c1_r(x))
        h3 = self.c3_r(F.silu(self.c2_r(h1)))
        att = torch.sigmoid(h3) - 0.5
        return (h3 + x) * att, h1, att


class SPAN(nn.Module):
    """SPAN (six SPABs). ``feature_channels`` 52 is the paper's SPAN, 48 its SPAN-S."""

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 52,
        upscale: int = 4,
        img_range: float = 255.0,
        rgb_mean: tuple[float, float, float] = DIV2K_MEAN,
    ) -> None:
        super().__init__()
        self.upscale = upscale
        self.img_range = img_range
        # not persistent: the official module keeps the mean as a plain attribute, outside the state dict
        self.register_buffer("mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        c = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, c)
        # attributes block_1..block_6 (not a ModuleList) so the official key names line up
        self.block_1 = SPAB(c)
        self.block_2 = SPAB(c)
        self.block_3 = SPAB(c)
        self.block_4 = SPAB(c)
        self.block_5 = SPAB(c)
        self.block_6 = SPAB(c)
        self.conv_cat = nn.Conv2d(c * 4, c, 1)
        self.conv_2 = Conv3XC(c, c)
        self.upsampler = pixelshuffle_upsampler(c, num_out_ch, upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean.to(x.dtype)) * self.img_range
        shallow = self.conv_1(x)
        b1, _, _ = self.block_1(shallow)
        out = b1
        for block in (self.block_2, self.block_3, self.block_4, self.block_5):
            out, _, _ = block(out)
        b6, b6_first, _ = self.block_6(out)
        fused = self.conv_cat(torch.cat([shallow, self.conv_2(b6), b1, b6_first], dim=1))
        return self.upsampler(fused)

    def train(self, mode: bool = True) -> SPAN:
        super().train(mode)
        if not mode:  # keep the stored eval_conv in step with the branches whenever we leave training
            self.reparameterize()
        return self

    @torch.no_grad()
    def reparameterize(self) -> SPAN:
        """Refresh every ``eval_conv`` from the branches, so a saved state dict is consistent."""
        for m in self.modules():
            if isinstance(m, Conv3XC):
                m.reparameterize()
        return self

    def deploy(self) -> SPAN:
        """A copy in eval mode with every Conv3XC replaced by its fused 3x3 conv: the network the paper
        counts and times. Its state dict is not the official layout (load checkpoints into the full model)."""
        net = copy.deepcopy(self).eval()
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, Conv3XC):
                    setattr(parent, name, child.to_conv2d())
        return net


def span(scale: int) -> SPAN:
    """The paper's SPAN: 52 channels (deployed params 481,324 / 488,359 / 498,208 at x2 / x3 / x4)."""
    return SPAN(feature_channels=52, upscale=scale)


def span_s(scale: int) -> SPAN:
    """SPAN-S: 48 channels (deployed params 410,700 / 417,195 / 426,288 at x2 / x3 / x4)."""
    return SPAN(feature_channels=48, upscale=scale)


_PAPER = (
    "Wan, Yu, Li, Chen, Zou, Liu, Yin, Zuo, Swift Parameter-free Attention Network for Efficient "
    "Super-Resolution, CVPRW 2024 (NTIRE 2024 ESR winner)"
)

MODEL_SPECS = [
    {
        "name": "span",
        "build": span,
        "scales": (2, 3, 4),
        "family": "baseline",
        "paper": _PAPER,
        "published_name": None,  # published.csv has no SPAN row yet
        # official release (Google Drive zip, not in git): x2 and x4 only
        "checkpoints": {2: "spanx2_ch52.pth", 4: "spanx4_ch52.pth"},
        "input_range": 1.0,
        "protocol": "basicsr",
        "description": "SPAN (52 channels, 6 parameter-free attention blocks, re-parameterisable 3x3 "
        "convs); params/FLOPs should be measured on model.deploy()",
    },
    {
        "name": "span-s",
        "build": span_s,
        "scales": (2, 3, 4),
        "family": "baseline",
        "paper": _PAPER + " (SPAN-S, 48 channels)",
        "published_name": None,
        "checkpoints": {2: "spanx2_ch48.pth", 4: "spanx4_ch48.pth"},
        "input_range": 1.0,
        "protocol": "basicsr",
        "description": "SPAN-S (48 channels); params/FLOPs should be measured on model.deploy()",
    },
]
