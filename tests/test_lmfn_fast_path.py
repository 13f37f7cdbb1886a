"""The fast MSM / DSConv path against a plain second implementation written here, for every variant.

The reference samples each snake point on its own with explicit bilinear interpolation (floor, four corners,
zero outside the image; no ``grid_sample``), accumulates the swing by summing steps outward from the centre,
normalises with ``F.layer_norm``, and applies each branch kernel tap by tap; its MSM pools, upsamples with
``F.interpolate`` and concatenates, and every 1x1 is ``F.conv2d``. Whole networks of every MSM/IFM variant
spelling are run twice, once with the modules' forwards and once with the reference patched in, and compared
in outputs and in every parameter's gradient, at batch 1 and 2 and at odd sizes.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lmfn.blocks import Conv1x1, pointwise
from lmfn.cells import MSM, make_cell, max_pool_ceil
from lmfn.snake_conv import DSConv
from lmfn.variants import build_variant, valid_variants


def _bilinear(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) read at pixel positions ys, xs (B, H, W); points outside the image read 0."""
    b, c, h, w = x.shape
    y0, x0 = ys.floor(), xs.floor()
    out = x.new_zeros(b, c, *ys.shape[1:])
    flat = x.reshape(b, c, h * w)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wgt = (1 - (ys - yy).abs()) * (1 - (xs - xx).abs())
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().view(b, 1, -1).expand(b, c, -1)
            val = flat.gather(2, idx).view(b, c, *ys.shape[1:])
            out = out + val * (wgt * inside).unsqueeze(1)
    return out


def reference_dsconv(m: DSConv, x: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    k, ctr, n = m.kernel_size, m.kernel_size // 2, len(m.morphs)
    o = m.offset_conv(x)
    ln = m.offset_norm
    o = F.layer_norm(o.permute(0, 2, 3, 1), (o.shape[1],), ln.weight, ln.bias, ln.eps).permute(0, 3, 1, 2)
    steps = torch.tanh(o).view(b, n, k, h, w)
    rows = torch.arange(h, dtype=x.dtype).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(w, dtype=x.dtype).view(1, 1, w).expand(b, h, w)
    convs = [m.dsc_conv_x if morph == "x" else m.dsc_conv_y for morph in m.morphs]
    out = convs[0].bias.view(1, -1, 1, 1) if convs[0].bias is not None else 0
    for mi, (morph, conv) in enumerate(zip(m.morphs, convs, strict=True)):
        kern = conv.weight.flatten(2)  # (out, in, K)
        for j in range(k):
            t = j - ctr
            between = range(ctr + 1, j + 1) if j > ctr else range(j, ctr)  # the steps from the centre to j
            swing = sum((steps[:, mi, i] for i in between), torch.zeros_like(rows)) * m.extend_scope
            if morph == "x":  # along the width, swinging in y
                sample = _bilinear(x, rows + swing, cols + t)
            else:
                sample = _bilinear(x, rows + t, cols + swing)
            out = out + torch.einsum("oc,bchw->bohw", kern[:, :, j], sample)
    return out


def reference_msm(m: MSM, x: torch.Tensor) -> torch.Tensor:
    """Paper eq. 2-5 step by step: pool group i by 2**i, snake conv, nearest upsample, crop, concat, 1x1, GELU."""
    h, w = x.shape[-2:]
    outs = []
    for i, (part, conv) in enumerate(zip(x.split(m.sizes, dim=1), m.mfr, strict=True)):
        s = 2**i
        y = conv(F.max_pool2d(part, s, s, ceil_mode=True) if i else part)
        outs.append(F.interpolate(y, scale_factor=s, mode="nearest")[..., :h, :w] if i else y)
    return x * F.gelu(F.conv2d(torch.cat(outs, dim=1), m.aggr.weight, m.aggr.bias))


def _plain_conv1x1(self: Conv1x1, x: torch.Tensor, channels_last: bool | None = None) -> torch.Tensor:
    return F.conv2d(x, self.weight, self.bias)  # the output layout is only a speed matter


def _run(net: torch.nn.Module, x: torch.Tensor, reference: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    saved = DSConv.forward, MSM.forward, Conv1x1.forward
    if reference:
        DSConv.forward, MSM.forward, Conv1x1.forward = reference_dsconv, reference_msm, _plain_conv1x1
    try:
        net.zero_grad(set_to_none=True)
        y = net(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    finally:
        DSConv.forward, MSM.forward, Conv1x1.forward = saved
    return y.detach(), [p.grad.clone() for p in net.parameters()]


SNAKE_VARIANTS = sorted({v for v in valid_variants() if "msm" in v or "ifm" in v or v == "lmfn"})


@pytest.mark.parametrize("name", SNAKE_VARIANTS)
def test_every_variant_matches_the_reference_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    net = build_variant(name, 2, num_feat=16, num_blocks=3).double()
    with torch.no_grad():  # swings of several pixels, so the bilinear weights and their gradients matter
        for mod in net.modules():
            if isinstance(mod, DSConv):
                mod.offset_conv.weight.mul_(20)
    for size in ((1, 9, 7), (2, 5, 11), (1, 17, 12)):  # batch 1 (points as batch items) and 2; odd sizes
        x = torch.rand(size[0], 3, *size[1:], dtype=torch.float64)
        y, g = _run(net, x, reference=False)
        y_ref, g_ref = _run(net, x, reference=True)
        torch.testing.assert_close(y, y_ref, atol=1e-9, rtol=1e-9)
        with torch.no_grad():  # inference takes other paths (the snake conv's blend, in-place sums)
            torch.testing.assert_close(net(x), y_ref, atol=1e-9, rtol=1e-9)
        for a, b in zip(g, g_ref, strict=True):
            torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("morph", ["x", "y", "xy"])
@pytest.mark.parametrize(("k", "scope"), [(3, 1.0), (5, 1.0), (3, 0.6), (5, 1.7)])
@pytest.mark.parametrize("batch", [1, 3])
def test_dsconv_float32_matches_the_reference(morph: str, k: int, scope: float, batch: int) -> None:
    torch.manual_seed(k * 10 + batch)
    m = DSConv(6, 5, k, extend_scope=scope, morph=morph)
    with torch.no_grad():
        m.offset_conv.weight.mul_(20)
    x = torch.rand(batch, 6, 13, 10, requires_grad=True)
    y = m(x)
    y_ref = reference_dsconv(m, x)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the three-pixel blend at K = 3, scope <= 1; grid_sample otherwise
        torch.testing.assert_close(m(x), y_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(
            m(x.contiguous(memory_format=torch.channels_last)), y_ref, atol=1e-5, rtol=1e-5
        )
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *m.parameters()], g)
    grads_ref = torch.autograd.grad(y_ref, [x, *m.parameters()], g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell", ["msm", "ifm"])
@pytest.mark.parametrize("batch", [1, 2])
def test_cells_give_the_same_numbers_in_either_layout_and_mode_and_keep_the_layout(
    cell: str, batch: int
) -> None:
    # the trunk hands cells channels-last tensors (LayerNorm2d works on the NHWC view); a cell must not
    # depend on the layout or on autograd for its values
    torch.manual_seed(batch)
    m = make_cell(cell, 12).double()
    x = torch.rand(batch, 12, 9, 14, dtype=torch.float64)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    y, y_cl = m(x), m(x_cl)
    torch.testing.assert_close(y_cl, y, atol=1e-12, rtol=1e-12)
    with torch.inference_mode():  # inference paths: snake-conv blend, pooling halvings, in-place sums
        torch.testing.assert_close(m(x_cl), y, atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(m(x), y, atol=1e-12, rtol=1e-12)
        if batch == 1:  # the benchmarked path (CPU, one image, inference) answers in the layout it was given
            assert m(x).is_contiguous()
            y_cl = m(x_cl)
            assert y_cl.is_contiguous(memory_format=torch.channels_last) and not y_cl.is_contiguous()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "channel_slice"])
def test_pointwise_is_the_1x1_conv_in_every_layout(layout: str, channels_last: bool) -> None:
    torch.manual_seed(0)
    full = torch.rand(1, 10, 7, 9, dtype=torch.float64)
    if layout != "nchw":
        full = full.contiguous(memory_format=torch.channels_last)
    x = full[:, 2:8] if layout == "channel_slice" else full
    weight, bias = torch.rand(5, x.shape[1], 1, 1, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    y = pointwise(x, weight, bias, channels_last=channels_last)
    torch.testing.assert_close(y, F.conv2d(x, weight, bias), atol=1e-12, rtol=1e-12)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (5, 1), (2, 3), (13, 11), (45, 80), (181, 319)])
def test_max_pool_by_halvings_is_ceil_mode_max_pool_exactly(size: tuple[int, int]) -> None:
    torch.manual_seed(size[0] * 1000 + size[1])
    x = torch.randn(2, 3, *size)
    for halvings in range(1, 4):
        s = 2**halvings
        expected = F.max_pool2d(x, s, s, ceil_mode=True)
        with torch.no_grad():  # the halvings (with autograd, max_pool2d itself runs)
            assert torch.equal(max_pool_ceil(x, halvings), expected)


@pytest.mark.parametrize("morph", ["x", "y", "xy"])
@pytest.mark.parametrize(("batch", "h", "w"), [(1, 1, 1), (1, 1, 6), (1, 5, 1), (2, 2, 2), (3, 4, 3), (1, 7, 9)])
def test_dsconv_blend_at_the_image_edges(morph: str, batch: int, h: int, w: int) -> None:
    # the blend reads shifted flat-offset views, which at the edges land on a neighbouring row, channel or
    # image (or the buffer's guard) with a zero weight: on images a row or column thin, every read is an
    # edge read; swings pushed to +-1 so every step's weight is in play
    torch.manual_seed(batch * 100 + h * 10 + w)
    m = DSConv(4, 3, 3, extend_scope=1.0, morph=morph)
    with torch.no_grad():
        m.offset_conv.weight.mul_(50)
    x = torch.randn(batch, 4, h, w) * 100  # neighbours far from zero, so a leaked read would show
    y_ref = reference_dsconv(m, x)
    with torch.no_grad():
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            torch.testing.assert_close(m(inp), y_ref, atol=1e-3, rtol=1e-5)
            out = torch.full((batch, 3, h, w), float("nan"))
            assert m(inp, out=out).data_ptr() == out.data_ptr()
            torch.testing.assert_close(out, y_ref, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("layout", ["nchw", "channel_slice"])
def test_pointwise_writes_into_a_given_nchw_buffer(layout: str) -> None:
    torch.manual_seed(1)
    full = torch.rand(1, 10, 7, 9, dtype=torch.float64)
    if layout == "channel_slice":
        full = full.contiguous(memory_format=torch.channels_last)
    x = full[:, 2:8] if layout == "channel_slice" else full
    weight, bias = torch.rand(5, x.shape[1], 1, 1, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    dest = torch.full((1, 8, 7, 9), float("nan"), dtype=torch.float64)
    y = pointwise(x, weight, bias, out=dest[:, 1:6])
    torch.testing.assert_close(dest[:, 1:6], F.conv2d(x, weight, bias), atol=1e-12, rtol=1e-12)
    assert y.data_ptr() == dest[:, 1:6].data_ptr()
    assert dest[:, 0].isnan().all() and dest[:, 6:].isnan().all()  # nothing outside the slice touched


def test_dsconv_blend_kernels_follow_weight_changes() -> None:
    # the blend keeps its 1x1 kernels between calls: an in-place update, a loaded state dict and a dtype
    # change must each be seen by the next inference call
    torch.manual_seed(3)
    m = DSConv(4, 3, 3, extend_scope=1.0, morph="xy")
    x = torch.randn(1, 4, 6, 7)
    with torch.no_grad():
        m(x)
        m.dsc_conv_x.weight.mul_(-2)
        torch.testing.assert_close(m(x), reference_dsconv(m, x), atol=1e-5, rtol=1e-5)
        other = DSConv(4, 3, 3, extend_scope=1.0, morph="xy")
        m.load_state_dict(other.state_dict())
        torch.testing.assert_close(m(x), reference_dsconv(other, x), atol=1e-5, rtol=1e-5)
        m.double()
        y = m(x.double())
        assert y.dtype == torch.float64
        torch.testing.assert_close(y, reference_dsconv(m, x.double()), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (8, 8), (9, 17), (23, 40)])
def test_msm_pyramid_and_nearest_upsampling_are_exact(size: tuple[int, int]) -> None:
    # without autograd MSM pools all coarser groups together, level by level, and upsamples with ATen's
    # nearest kernel into its buffer; both must give exactly what per-group max_pool2d and index copies give
    from lmfn.cells import _nearest_into, _pyramid

    torch.manual_seed(size[0] * 100 + size[1])
    x = torch.randn(1, 10, *size).contiguous(memory_format=torch.channels_last)
    sizes = [3, 3, 2, 2]
    with torch.no_grad():
        fast = _pyramid(x, sizes)
    for i, (part, got) in enumerate(zip(x.split(sizes, dim=1), fast, strict=True)):
        assert torch.equal(got, F.max_pool2d(part, 2**i, 2**i, ceil_mode=True) if i else part)
        if not i:
            continue
        s = 2**i
        rows = torch.arange(size[0]) // s
        cols = torch.arange(size[1]) // s
        expected = got[:, :, rows][:, :, :, cols]
        for grad in (False, True):  # ATen's kernel; the view copies (autograd, FLOP tracer)
            buf = torch.full((1, 5, *size), float("nan"))
            with torch.set_grad_enabled(grad):
                _nearest_into(buf[:, 1 : 1 + got.shape[1]], got.contiguous(), s)
            assert torch.equal(buf[:, 1 : 1 + got.shape[1]], expected)
            assert buf[:, 0].isnan().all() and buf[:, 1 + got.shape[1] :].isnan().all()
