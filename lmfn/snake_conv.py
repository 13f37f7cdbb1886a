"""Dynamic snake convolution (DSConv; Qi et al., ICCV 2023), as used by LMFN's multi-scale modulation.

A 1-D kernel of K points lies along one image axis; each point is shifted sideways by an offset that is
accumulated outward from the kernel centre, so the kernel bends like a snake. Offsets come from a 3x3 conv,
a norm and tanh (each step in [-1, 1]), scaled by ``extend_scope``. Features are read at the shifted points
by bilinear sampling and the K samples are combined by a (1,K) / (K,1) kernel.

Differences from DSCNet's reference code (YaoleiQi/DSCNet), each deliberate:

- Gradients reach the offset conv at every kernel size. The original ``S3_DSConv.py`` accumulates into a
  ``detach().clone()`` of the offsets and its loop ``range(1, center)`` is empty for K=3, so at K=3 every
  used offset is a detached copy and ``offset_conv`` never learns (at larger K the two outermost points
  stay detached too). Here the accumulation is a differentiable linear map.
- Offset norm: a per-pixel LayerNorm over the offset channels, not BatchNorm (original; fails at batch 1
  in training) or GroupNorm (``_pro`` version; statistics over the whole image, so tiling would change the
  output). It depends neither on ``in_channels`` nor on batch or image size.
- No GroupNorm/ReLU after the conv: inside MSM the DSConv is a plain feature operator followed by the
  cell's own 1x1 + GELU (DSCNet's output GroupNorm also needs channel counts divisible by 4).
- Points outside the image read zeros (zero padding, like every other conv here) rather than the clamped
  border, so with zero offsets DSConv equals the plain (1,K) / (K,1) conv with zero padding.
- Inference at K = 3 with extend_scope <= 1 (LMFN's setting) samples nothing: every swing stays within one
  pixel, so the bilinear read is a three-pixel blend whose weights commute with the branch kernel; each
  point's kernel column runs as one GEMM over the input and the blend adds shifted views of its output
  (``DSConv._forward_blend``; the same numbers up to float rounding). Training keeps grid_sample.
- Otherwise one ``grid_sample`` call for all K points of all morphologies, then one 1x1 conv holding every
  branch's kernel. CPU ``grid_sample`` spreads over threads by batch item only, so a single image would sample on
  one thread: at batch 1 each point becomes a batch item of its own (the image expanded, not copied) and
  the 1x1 kernel's columns are reordered to the (point, channel) stack that comes out; the samples are the
  same numbers either way.
- Kernel shapes follow the image axis the snake lies along: ``dsc_conv_x`` (morph "x", horizontal snake)
  is (1,K), ``dsc_conv_y`` is (K,1); each is the plain conv the snake reduces to with zero offsets.
  DSCNet stores transposed shapes (it stacks samples along the other axis); no official LMFN weights
  exist, so nothing depends on that layout.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import LayerNorm2d, as_nchw, pointwise

MORPHS: dict[str, tuple[str, ...]] = {"x": ("x",), "y": ("y",), "xy": ("x", "y")}


def accumulation_matrix(
    kernel_size: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """(K, K) matrix M such that ``M @ steps`` gives each point's position relative to the kernel centre.

    The centre stays at 0; point c+i moves by steps c+1..c+i summed, point c-i by steps c-1..c-i
    (DSCNet's "iterative" swing outward from the centre, as one linear map).
    """
    c = kernel_size // 2
    j = torch.arange(kernel_size, device=device).view(-1, 1)  # output point
    i = torch.arange(kernel_size, device=device).view(1, -1)  # step
    right = (j > c) & (i > c) & (i <= j)
    left = (j < c) & (i < c) & (i >= j)
    return (right | left).to(dtype)


@lru_cache(maxsize=64)
def _base_grid(
    h: int, w: int, k: int, morphs: tuple[str, ...], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Unshifted points in grid_sample units (align_corners=False), (n_morph, K, H*W, 2) holding (x, y).

    Cached per size: it is the same for every call (and every MSM branch) at that size.
    """
    with torch.inference_mode(False), torch.no_grad():  # a cached tensor must stay usable outside inference
        return _make_base_grid(h, w, k, morphs, device, dtype)


def _make_base_grid(
    h: int, w: int, k: int, morphs: tuple[str, ...], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    taps = torch.arange(k, device=device, dtype=dtype).view(k, 1, 1) - k // 2
    ys = torch.arange(h, device=device, dtype=dtype).view(1, h, 1)
    xs = torch.arange(w, device=device, dtype=dtype).view(1, 1, w)
    parts = []
    for m in morphs:
        px, py = (xs + taps, ys + 0 * taps) if m == "x" else (xs + 0 * taps, ys + taps)
        px, py = torch.broadcast_tensors(px, py)  # (K, H, W)
        parts.append(torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1).view(k, h * w, 2))
    return torch.stack(parts)


class DSConv(nn.Module):
    """Dynamic snake convolution.

    Args:
        in_channels / out_channels: any counts (nothing is grouped).
        kernel_size: K, the number of points on the snake (odd).
        extend_scope: pixels one step may swing; a step is tanh(...) * extend_scope.
        morph: "x" (snake along the width, swinging in y), "y" (along the height, swinging in x) or "xy"
            (both, summed; one offset conv predicts both swings, as DSCNet's offset conv does).
        bias: one bias for the output (with "xy" only ``dsc_conv_x`` carries it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        extend_scope: float = 1.0,
        morph: str = "xy",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if morph not in MORPHS:
            raise ValueError(f"morph must be one of {sorted(MORPHS)}, got {morph!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        self.kernel_size = kernel_size
        self.extend_scope = extend_scope
        self.morph = morph
        self.morphs = MORPHS[morph]
        n_off = kernel_size * len(self.morphs)
        self.offset_conv = nn.Conv2d(in_channels, n_off, 3, padding=1)
        self.offset_norm = LayerNorm2d(n_off)
        pad = kernel_size // 2
        if "x" in self.morphs:
            self.dsc_conv_x = nn.Conv2d(
                in_channels, out_channels, (1, kernel_size), padding=(0, pad), bias=bias
            )
        if "y" in self.morphs:
            y_bias = bias and "x" not in self.morphs  # a second bias would only add to the first
            self.dsc_conv_y = nn.Conv2d(
                in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), bias=y_bias
            )

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """Per-point swing steps in [-1, 1]: (B, n_morph * K, H, W)."""
        o = self.offset_conv(x)
        # LayerNorm2d's maths, written out: F.layer_norm over 3-6 channels per pixel is slow on CPU
        d = o - o.mean(1, keepdim=True)
        o = d * torch.rsqrt(d.square().mean(1, keepdim=True) + self.offset_norm.eps)
        o = torch.addcmul(
            self.offset_norm.bias.view(1, -1, 1, 1), o, self.offset_norm.weight.view(1, -1, 1, 1)
        )
        return torch.tanh(o)

    def offsets(self, x: torch.Tensor) -> torch.Tensor:
        """Point positions relative to their unshifted place, in pixels: (B, n_morph, K, H, W)."""
        b, _, h, w = x.shape
        st = self.steps(x).view(b, len(self.morphs), self.kernel_size, h * w)
        acc = accumulation_matrix(self.kernel_size, st.dtype, st.device) @ st
        return (acc * self.extend_scope).view(b, len(self.morphs), self.kernel_size, h, w)

    def fused_weight(self, points_first: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every branch as one 1x1 kernel over the sample stack, and the bias. Input channel c * n*K + point,
        or point * C + c with ``points_first`` (the batch-1 layout of :meth:`forward`)."""
        convs = self._branch_convs()
        w = torch.cat([conv.weight.flatten(2) for conv in convs], dim=2)  # (out, in, n*K)
        if points_first:
            w = w.transpose(1, 2)
        return w.reshape(w.shape[0], -1, 1, 1), convs[0].bias

    def forward(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C_in, H, W) in any memory format -> (B, C_out, H, W), or written into ``out`` (dense NCHW,
        without autograd) and returned."""
        # the blend only without autograd: its backward through a dozen in-place view updates made LMFN's
        # training step 20 % slower than grid_sample's
        if self.kernel_size == 3 and self.extend_scope <= 1 and not torch.is_grad_enabled():
            return self._forward_blend(x, out)
        y = self._forward_sampled(as_nchw(x))
        return y if out is None else out.copy_(y)

    def _forward_blend(self, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The K = 3, extend_scope <= 1 case without grid_sample: every swing then stays within one pixel
        and each side point lies on an integer column (x-snake) or row (y-snake), so bilinear sampling is a
        blend of three pixels, (1 - |o|) at the point, relu(o) one pixel on, relu(-o) one pixel back. The
        per-pixel blend weights are the same for every channel, so they commute with the branch kernel: each
        point's kernel column runs first, as one GEMM over x (no sample stack), and the blend adds shifted
        views of its output. Equal to the sampled path up to rounding."""
        k, n = self.kernel_size, len(self.morphs)
        centre, sides = self._blend_kernels()
        out = pointwise(x, centre, self._branch_convs()[0].bias, channels_last=False, out=out)
        # K = 3: a side point's swing is its own step (accumulation_matrix is diagonal), times extend_scope
        swing = self.steps(x).unflatten(1, (n, k))[:, :, 0::2].movedim(0, 2)  # (n, 2, B, H, W)
        weights = _blend_weights(swing if self.extend_scope == 1 else swing * self.extend_scope, self.morphs)
        # each side point's kernel column runs as its own GEMM into one reused guarded block, read by its
        # three blend terms at once, while it is in cache (one GEMM of all four into 4x the memory ran 2-3x
        # slower); each read one flat-offset view, edges handled by zero weights (26 ops where per-read
        # cropping took ~145); the same sums in the same order
        block, filled = _guarded_block(x, out.shape[1]), None
        for weight, (side, dy, dx) in zip(weights, _blend_reads(self.morphs), strict=True):
            if side != filled:
                filled = side
                pointwise(x, sides[side], out=block)
            out.addcmul_(weight, _flat_shifted(block, dy, dx))
        return out

    def _blend_kernels(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The blend's 1x1 kernels (out, in, 1, 1): the centre points' sum and each side point's column, in
        :func:`_blend_reads` order. Kept until a weight changes (its version or storage), as rebuilding them
        was ~25 small ops per call; rebuilt under the FLOP tracer, which must see every op."""
        convs = self._branch_convs()
        tracing = torch.jit.is_tracing()
        key = tuple((c.weight._version, c.weight.data_ptr()) for c in convs)
        cached = getattr(self, "_blend_cache", None)
        if not tracing and cached is not None and cached[0] == key:
            return cached[1]
        kernels = [conv.weight.flatten(2) for conv in convs]  # (out, in, K)
        centre = sum(kern[:, :, self.kernel_size // 2] for kern in kernels)  # the centre points all read x
        sides = tuple(kern[:, :, j, None, None] for kern in kernels for j in (0, 2))
        if tracing:
            return centre[..., None, None], sides
        with torch.inference_mode(False):  # clones that stay usable outside inference mode
            self._blend_cache = (key, (centre[..., None, None].clone(), tuple(t.clone() for t in sides)))
        return self._blend_cache[1]

    def _branch_convs(self) -> list[nn.Conv2d]:
        return [self.dsc_conv_x if m == "x" else self.dsc_conv_y for m in self.morphs]

    def _forward_sampled(self, x: torch.Tensor) -> torch.Tensor:
        """The general case: every point read by one bilinear ``grid_sample`` call."""
        b, c, h, w = x.shape
        k, n = self.kernel_size, len(self.morphs)
        st = self.steps(x).view(b, n, k, h * w)
        # pixels -> grid_sample units, times extend_scope; an x-snake swings in y, a y-snake in x
        e = self.extend_scope
        unit = [(0.0, 2.0 * e / h) if m == "x" else (2.0 * e / w, 0.0) for m in self.morphs]
        unit = torch.tensor(unit, dtype=x.dtype, device=x.device).view(n, 1, 1, 2)
        acc = accumulation_matrix(k, x.dtype, x.device)
        if k <= 3:  # the accumulation is then diagonal (centre 0, neighbours 1): fold it into the unit
            unit, acc_st = unit * acc.diagonal().view(1, k, 1, 1), st
        else:
            acc_st = acc @ st
        # one fused multiply-add: unshifted points + swing (B, n, K, H*W, 2)
        grid = torch.addcmul(_base_grid(h, w, k, self.morphs, x.device, x.dtype), acc_st.unsqueeze(-1), unit)
        if b == 1:  # one batch item per point, so the sampling uses every thread: (n*K, C, 1, H*W)
            samples = F.grid_sample(
                x.expand(n * k, c, h, w), grid.view(n * k, 1, h * w, 2), mode="bilinear",
                padding_mode="zeros", align_corners=False,
            )  # fmt: skip
        else:  # points stacked as rows of the grid: samples come out as (B, C, n*K, H*W) = (B, C*n*K, H, W)
            samples = F.grid_sample(
                x, grid.view(b, n * k, h * w, 2), mode="bilinear", padding_mode="zeros", align_corners=False
            )
        weight, bias = self.fused_weight(points_first=b == 1)
        return pointwise(samples.view(b, c * n * k, h, w), weight, bias)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, extend_scope={self.extend_scope}, morph={self.morph!r}"


@lru_cache(maxsize=8)
def _blend_reads(morphs: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    """(side point, dy, dx) of each blend term, in the order of the stacked weights: morph, side point (tap
    -1, +1), step (here 0, ahead +1, back -1). Side point i is the i-th side kernel of
    :meth:`DSConv._blend_kernels`. An x-snake's side points sit one column off and swing along rows; a
    y-snake's the other way round."""
    reads = []
    for i, morph in enumerate(morphs):
        for j, tap in enumerate((-1, 1)):
            for step in (0, 1, -1):
                reads.append((2 * i + j, *((step, tap) if morph == "x" else (tap, step))))
    return tuple(reads)


def _blend_weights(swing: torch.Tensor, morphs: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """The blend weight of every read of :func:`_blend_reads`, each (B, 1, H, W), from the side points' swings
    (n_morph, 2, B, H, W): (1 - |o|, relu(o), relu(-o)), and 0 where the read leaves the image (zero padding;
    so the caller's flat-offset view may land anywhere finite there)."""
    n, _, b, h, w = swing.shape
    weights = swing.new_empty(n, 2, 3, b, h, w)
    ahead = torch.clamp(swing, min=0, out=weights[:, :, 1])
    back = torch.clamp(swing, max=0, out=weights[:, :, 2]).neg_()
    torch.add(ahead, back, out=weights[:, :, 0]).neg_().add_(1)  # 1 - |o|, rounded as 1 - ahead - back
    per_read = weights.view(n * 6, b, h, w)
    first_row, last_row, first_col, last_col = _reads_leaving(morphs, swing.device)
    per_read[:, :, 0].index_fill_(0, first_row, 0)
    per_read[:, :, -1].index_fill_(0, last_row, 0)
    per_read[..., 0].index_fill_(0, first_col, 0)
    per_read[..., -1].index_fill_(0, last_col, 0)
    return per_read.unsqueeze(2).unbind()


@lru_cache(maxsize=8)
def _reads_leaving(morphs: tuple[str, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Indices into :func:`_blend_reads` of the reads that leave the image from its first row, last row,
    first column and last column."""
    reads = _blend_reads(morphs)
    picks = ([q for q, r in enumerate(reads) if pick(r)] for pick in (
        lambda r: r[1] < 0, lambda r: r[1] > 0, lambda r: r[2] < 0, lambda r: r[2] > 0))
    with torch.inference_mode(False):  # a cached tensor must stay usable outside inference
        return tuple(torch.tensor(p, dtype=torch.long, device=device) for p in picks)


def _guarded_block(x: torch.Tensor, channels: int) -> torch.Tensor:
    """An uninitialised dense NCHW (B, ``channels``, H, W) tensor inside a buffer with W + 1 zeros before and
    after it, so every flat-offset view of :func:`_flat_shifted` stays inside finite memory."""
    b, _, h, w = x.shape
    guard = w + 1
    buf = x.new_empty(2 * guard + b * channels * h * w)
    buf[:guard].zero_()
    buf[-guard:].zero_()
    return buf[guard:-guard].view(b, channels, h, w)


def _flat_shifted(z: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The dense NCHW ``z`` read at (r + dy, c + dx) as one flat offset: exact inside the image; outside it
    the caller's weight must be zero."""
    return z.as_strided(z.shape, z.stride(), z.storage_offset() + dy * z.shape[3] + dx)
