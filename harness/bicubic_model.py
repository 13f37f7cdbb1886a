"""The ``bicubic`` zoo entry: MATLAB-style bicubic upscaling as a parameter-free nn.Module."""

from __future__ import annotations

import torch
from torch import nn

from harness.resize import output_size, resize_matrix


class Bicubic(nn.Module):
    """Upscales an NCHW batch by ``scale`` with the MATLAB kernel, in float64 (so rounding matches MATLAB)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        mh = torch.tensor(resize_matrix(h, output_size(h, self.scale), float(self.scale), True))
        mw = torch.tensor(resize_matrix(w, output_size(w, self.scale), float(self.scale), True))
        y = mh.to(x.device) @ x.double() @ mw.to(x.device).T
        return y.to(x.dtype) if x.dtype != torch.float32 else y.float()
