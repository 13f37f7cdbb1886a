"""The cells that fill the building module's placeholder (LMFN paper, Fig. 2c-e): LKA, MSM and IFM (with IFF).

Every cell maps (B, C, H, W) to the same shape and works for any H, W >= 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Conv1x1, LayerNorm2d, fresh_add, fresh_mul, is_channels_last
from .snake_conv import DSConv

CELLS = ("lka", "msm", "ifm")
SCHEMES = ("cascade", "parallel", "mr", "mr-cross")
DEFAULT_SCHEME = "mr"


class LKA(nn.Module):
    """Large kernel attention as LKDN uses it (paper eq. 1): 1x1 -> 5x5 DW -> 5x5 DW dilation 3, times input.

    No sigmoid: the attention map multiplies the input directly. Parameter names follow LKDN's ``Attention``.
    """

    def __init__(self, dim: int, gemm_pointwise: bool = False) -> None:
        super().__init__()
        # gemm_pointwise: the 1x1 as lmfn.blocks.Conv1x1 (same parameters), for the LKAs inside IFF, which run
        # NCHW, where oneDNN's 1x1 is slow; the trunk's LKA stays nn.Conv2d, so LKDN's numbers stay LKDN's
        self.pointwise = Conv1x1(dim, dim) if gemm_pointwise else nn.Conv2d(dim, dim, 1)
        self.depthwise = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.depthwise_dilated = nn.Conv2d(dim, dim, 5, padding=6, groups=dim, dilation=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.pointwise, Conv1x1) and not is_channels_last(x):
            # IFF's NCHW halves: the depthwise convs run channels-last, where oneDNN needs no reorder (NCHW
            # took 2-7x longer, most of it in page faults on the reorder's scratch); the product is written
            # in x's layout in one pass (1.4 ms at 28x180x320, 2 threads; a copy to NCHW, then the product:
            # 3.6 ms)
            attn = self.depthwise_dilated(self.depthwise(self.pointwise(x, channels_last=True)))
            return x * attn if torch.is_grad_enabled() else torch.mul(attn, x, out=torch.empty_like(x))
        return x * self.depthwise_dilated(self.depthwise(self.pointwise(x)))


def _split_sizes(channels: int, parts: int) -> list[int]:
    """Sizes as even as possible (the first groups take the remainder), so any channel count splits."""
    return [channels // parts + (i < channels % parts) for i in range(parts)]


class MSM(nn.Module):
    """Multi-scale modulation (paper eq. 2-5).

    Channel group i (of ``levels``) is max-pooled by 2**i, passed through a 3x3 dynamic snake conv and brought
    back to the input size; the groups are concatenated, fused by 1x1 + GELU and multiply the input.
    """

    def __init__(
        self, dim: int, levels: int = 4, kernel_size: int = 3, extend_scope: float = 1.0, morph: str = "xy"
    ) -> None:
        super().__init__()
        if dim < levels:
            raise ValueError(f"MSM needs at least {levels} channels, got {dim}")
        self.sizes = _split_sizes(dim, levels)
        # "DSConv with kernel size 3x3": read as a K=3 snake along x plus one along y (morph "xy"), summed
        self.mfr = nn.ModuleList(
            DSConv(c, c, kernel_size, extend_scope=extend_scope, morph=morph) for c in self.sizes
        )
        self.aggr = Conv1x1(dim, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The trunk runs channels-last. Each group is read as a channel slice of x in place (the snake conv's
        # GEMMs take any strides; transposing x to NCHW first cost more than it saved), every group is written
        # straight into its channels of one NCHW buffer (no torch.cat, no upsampled copy), and the fusing 1x1
        # GEMM writes x's own layout back, for a like-with-like product.
        mixed = x.new_empty(x.shape)
        start = 0
        for i, (part, conv) in enumerate(zip(_pyramid(x, self.sizes), self.mfr, strict=True)):
            dst = mixed[:, start : start + part.shape[1]]
            start += part.shape[1]
            if i == 0:
                conv(part, out=dst)
            else:
                _nearest_into(dst, conv(part), 2**i)
        return fresh_mul(self.act(self.aggr(mixed, channels_last=is_channels_last(x))), x)


def max_pool_ceil(x: torch.Tensor, halvings: int) -> torch.Tensor:
    """``F.max_pool2d(x, s, s, ceil_mode=True)`` with s = 2**halvings. ceil_mode: a partial window at the
    bottom/right edge still pools, so any H, W works (even 1x1). Without autograd it runs as that many 2x2
    halvings (the max of maxima is the max, and ceil-mode windows nest, so the values are the same): pairwise
    ``torch.maximum`` of strided views ran 4-7x faster on CPU than max_pool2d, which also builds an index map;
    in training max_pool2d stays, as its one-scatter backward is cheaper (LMFN's step was 4 % slower)."""
    if torch.is_grad_enabled():
        return F.max_pool2d(x, 2**halvings, 2**halvings, ceil_mode=True) if halvings else x
    for _ in range(halvings):
        x = _halve(_halve(x, 3), 2)
    return x


def _pyramid(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Channel group i of ``x`` (``sizes`` channels each), max-pooled by 2**i (:func:`max_pool_ceil`).
    Without autograd the groups still to be pooled are halved together, each level from the last: one op
    per halving instead of one per group, the full-size read done once (the values are the same)."""
    if torch.is_grad_enabled():
        return [max_pool_ceil(part, i) for i, part in enumerate(x.split(sizes, dim=1))]
    parts, rest = [], x
    for i, size in enumerate(sizes):
        if i:
            rest = max_pool_ceil(rest, 1)
        part, rest = rest.split([size, rest.shape[1] - size], dim=1)
        parts.append(part)
    return parts


def _halve(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Max of neighbouring pairs along ``dim``; an odd last element is its own pair."""
    n = x.shape[dim]
    if n == 1:
        return x
    first, second = (
        x[(slice(None),) * dim + (slice(0, None, 2),)],
        x[(slice(None),) * dim + (slice(1, None, 2),)],
    )
    if n % 2 == 0:
        return torch.maximum(first, second)
    return torch.cat([torch.maximum(first.narrow(dim, 0, n // 2), second), first.narrow(dim, n // 2, 1)], dim)


def _nearest_into(dst: torch.Tensor, y: torch.Tensor, s: int) -> None:
    """``dst[..., r, c] = y[..., r // s, c // s]``: nearest upsampling by ``s`` cropped to ``dst``, so each
    pixel gets the value of the window it was pooled in, exactly aligned even when H, W are not multiples of
    ``s`` (SAFMN-style nearest resize). Without autograd into a dense ``dst``, ATen's nearest kernel given the
    scale itself (source row r * (1 / s), exact for a power of two; 2-3x faster than the copies); otherwise,
    and under the FLOP tracer (which prices that op per element), broadcast copies into views of ``dst``:
    whole s x s blocks, then the partial bottom rows, right columns and corner."""
    b, c, h, w = dst.shape
    if not torch.is_grad_enabled() and dst.is_contiguous() and y.is_contiguous() and not torch.jit.is_tracing():
        torch.ops.aten.upsample_nearest2d.out(y, [h, w], float(s), float(s), out=dst)
        return
    hq, wq, rh, rw = h // s, w // s, h % s, w % s
    if hq and wq:
        dst[..., : hq * s, : wq * s].view(b, c, hq, s, wq, s).copy_(y[:, :, :hq, None, :wq, None])
    if rh and wq:
        dst[..., hq * s :, : wq * s].view(b, c, rh, wq, s).copy_(y[:, :, hq : hq + 1, :wq, None])
    if rw and hq:
        dst[..., : hq * s, wq * s :].view(b, c, hq, s, rw).copy_(y[:, :, :hq, None, wq : wq + 1])
    if rh and rw:
        dst[..., hq * s :, wq * s :].copy_(y[:, :, hq : hq + 1, wq : wq + 1])


class IFF(nn.Module):
    """Interactive feature fusion (paper eq. 6-8, Fig. 4 schemes); output = 1x1(mix(x)) + x.

    Schemes (our reading of Fig. 4, which the text does not describe):
      - ``cascade``: MSM(LKA(x)) on the whole tensor, no split.
      - ``parallel``: split; LKA on one half, MSM on the other; concat.
      - ``mr`` (eq. 6-7, LMFN's default): merge-and-run; LKA on both halves, then MSM on both halves, each
        stage adding the mean of its two inputs to both outputs.
      - ``mr-cross``: merge-and-run with LKA -> MSM on the first half and MSM -> LKA on the second.
    The two halves use separate modules (no weight sharing): eq. 6 writes LKA(x_l), LKA(x_m) as two
    branches, as in the merge-and-run networks it cites, and nothing says they share weights.
    """

    def __init__(self, dim: int, scheme: str = DEFAULT_SCHEME, **msm_kwargs) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"unknown IFF scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
        self.scheme = scheme
        if scheme == "cascade":
            self.lka = LKA(dim, gemm_pointwise=True)
            self.msm = MSM(dim, **msm_kwargs)
        else:
            self.sizes = _split_sizes(dim, 2)
            dl, dm = self.sizes
            if scheme == "parallel":
                self.lka = LKA(dl, gemm_pointwise=True)
                self.msm = MSM(dm, **msm_kwargs)
            else:  # merge-and-run: stage 1 (l, m) then stage 2 (l, m)
                if dl != dm:
                    raise ValueError(f"merge-and-run needs an even channel count, got {dim}")
                self.lka_l, self.lka_m = LKA(dl, gemm_pointwise=True), LKA(dm, gemm_pointwise=True)
                self.msm_l, self.msm_m = MSM(dl, **msm_kwargs), MSM(dm, **msm_kwargs)
                if scheme == "mr-cross":
                    # mr and mr-cross own the same tensors, wired differently: this parameter-free marker
                    # (saved with the weights) lets a checkpoint say which one it is (harness/detectors.py)
                    self.register_buffer("cross", torch.ones(1))
        self.proj = Conv1x1(dim, dim)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        # mr-cross checkpoints saved before the marker existed still load strictly into mr-cross: the marker
        # is a constant, not a weight (detection alone needs it)
        if self.scheme == "mr-cross":
            state_dict.setdefault(prefix + "cross", torch.ones(1))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def stages(self) -> list[tuple[nn.Module, nn.Module]]:
        """The (first-half, second-half) branches of each merge-and-run stage."""
        if self.scheme == "mr":
            return [(self.lka_l, self.lka_m), (self.msm_l, self.msm_m)]
        return [(self.lka_l, self.msm_m), (self.msm_l, self.lka_m)]

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the output 1x1 (eq. 6-7 for the merge-and-run schemes)."""
        if self.scheme == "cascade":
            return self.msm(self.lka(x))
        xl, xm = x.split(self.sizes, dim=1)
        if self.scheme == "parallel":
            return torch.cat([self.lka(xl), self.msm(xm)], dim=1)
        # inference (no autograd) adds in place and writes the last stage straight into the output, no cat
        out = None if torch.is_grad_enabled() else torch.empty_like(x)
        stages = self.stages()
        for n, (branch_l, branch_m) in enumerate(stages, 1):
            merged = fresh_mul(xl + xm, 0.5)
            yl, ym = branch_l(xl), branch_m(xm)
            if out is not None and n == len(stages):
                torch.add(yl, merged, out=out[:, : self.sizes[0]])
                torch.add(ym, merged, out=out[:, self.sizes[0] :])
                return out
            xl, xm = fresh_add(yl, merged), fresh_add(ym, merged)
        return torch.cat([xl, xm], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fresh_add(self.proj(self.mix(x)), x)

    def extra_repr(self) -> str:
        return f"scheme={self.scheme!r}"


class IFM(nn.Module):
    """Interactive fusion modulation (paper eq. 9-10): LN -> 1x1 to 2C -> split; y = 1x1(a * IFF(b)) + x."""

    def __init__(self, dim: int, scheme: str = DEFAULT_SCHEME, **msm_kwargs) -> None:
        super().__init__()
        self.norm = LayerNorm2d(dim)
        self.proj_in = Conv1x1(dim, 2 * dim)
        self.iff = IFF(dim, scheme, **msm_kwargs)
        self.proj_out = Conv1x1(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the 1x1 convs as GEMMs on CPU (lmfn.blocks.Conv1x1); state-dict names as nn.Conv2d's. The inside
        # runs dense NCHW, where channel halves are contiguous slices, whatever x's layout: the GEMMs in and
        # out change the layout on their transposed operand instead of a copy
        a, b = self.proj_in(self.norm(x), channels_last=False).chunk(2, dim=1)
        return fresh_add(self.proj_out(fresh_mul(self.iff(b), a), channels_last=is_channels_last(x)), x)


def make_cell(name: str, dim: int, scheme: str = DEFAULT_SCHEME, **msm_kwargs) -> nn.Module:
    """Build a cell by name: ``lka`` | ``msm`` | ``ifm`` (``scheme`` only matters for ``ifm``)."""
    if name == "lka":
        return LKA(dim)
    if name == "msm":
        return MSM(dim, **msm_kwargs)
    if name == "ifm":
        return IFM(dim, scheme, **msm_kwargs)
    raise ValueError(f"unknown cell {name!r}; valid: {', '.join(CELLS)}")
