"""Dynamic snake convolution: algebra against plain convs and hand-shifted images, gradients, any shape."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lmfn.snake_conv import DSConv, accumulation_matrix


def _zero_offsets(m: DSConv) -> None:
    with torch.no_grad():
        m.offset_conv.weight.zero_()
        m.offset_conv.bias.zero_()  # LN of a constant is 0, + LN bias 0, tanh 0 -> no swing


def _plain(m: DSConv, x: torch.Tensor) -> torch.Tensor:
    """The zero-padded (1,K) / (K,1) convs on the unshifted grid (nn.Conv2d's own forward)."""
    out = 0
    if "x" in m.morphs:
        out = out + m.dsc_conv_x(x)
    if "y" in m.morphs:
        out = out + m.dsc_conv_y(x)
    return out


@pytest.mark.parametrize("morph", ["x", "y", "xy"])
@pytest.mark.parametrize("k", [3, 5])
def test_zero_offsets_equal_plain_conv(morph: str, k: int) -> None:
    torch.manual_seed(0)
    m = DSConv(5, 7, k, morph=morph)
    _zero_offsets(m)
    x = torch.randn(2, 5, 9, 11)  # odd sizes: the kernel's ends read zero padding at the borders
    with torch.no_grad():
        torch.testing.assert_close(m(x), _plain(m, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("morph", ["x", "y"])
@pytest.mark.parametrize("k", [3, 5])
def test_saturated_offsets_shift_points_by_whole_pixels(morph: str, k: int) -> None:
    """Every step tanh(20) ~ 1: point at tap t moves |t| pixels sideways (accumulated from the centre)."""
    torch.manual_seed(1)
    c = k // 2
    m = DSConv(1, 1, k, morph=morph)
    _zero_offsets(m)
    with torch.no_grad():
        m.offset_norm.bias.fill_(20.0)
    x = torch.randn(1, 1, 12, 10)
    xp = F.pad(x, (k, k, k, k))[0, 0]  # zero padding wide enough for tap + swing
    conv = m.dsc_conv_x if morph == "x" else m.dsc_conv_y
    wt = conv.weight.flatten()
    ref = conv.bias.clone().view(1, 1)
    for j in range(k):
        t = j - c
        dy, dx = (abs(t), t) if morph == "x" else (t, abs(t))
        ref = ref + wt[j] * xp[k + dy : k + dy + 12, k + dx : k + dx + 10]
    with torch.no_grad():
        torch.testing.assert_close(m(x)[0, 0], ref, atol=1e-5, rtol=1e-5)


def _dscnet_loop_accumulate(steps: torch.Tensor) -> torch.Tensor:
    """DSCNet's outward loop (with the range fixed to reach the outermost points), over dim 0."""
    k = steps.shape[0]
    c = k // 2
    out = torch.zeros_like(steps)
    for i in range(1, c + 1):
        out[c + i] = out[c + i - 1] + steps[c + i]
        out[c - i] = out[c - i + 1] + steps[c - i]
    return out


@pytest.mark.parametrize("k", [1, 3, 5, 9])
def test_accumulation_matches_the_outward_loop(k: int) -> None:
    steps = torch.randn(k, 4)
    torch.testing.assert_close(accumulation_matrix(k) @ steps, _dscnet_loop_accumulate(steps))


@pytest.mark.parametrize("morph", ["x", "y", "xy"])
def test_offset_conv_gets_gradients_at_k3(morph: str) -> None:
    """The original DSCNet gives the offset conv no gradient at K=3 (detached copy, empty loop); ours must."""
    torch.manual_seed(0)
    m = DSConv(4, 4, 3, morph=morph)
    x = torch.randn(1, 4, 8, 9)
    m(x).square().mean().backward()
    g = m.offset_conv.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    assert m.offset_norm.weight.grad.abs().sum() > 0


def test_offset_gradients_match_finite_differences() -> None:
    """gradcheck in float64 w.r.t. the offset conv's bias (it moves every point): the analytic gradient
    through accumulation, tanh, LayerNorm and bilinear sampling is the numerical one."""
    torch.manual_seed(0)
    m = DSConv(2, 2, 3, morph="xy", extend_scope=0.7).double()
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    b0 = torch.randn(6, dtype=torch.float64) * 0.3

    def f(b: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(m, {"offset_conv.bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (b0.requires_grad_(),), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize(("cin", "cout"), [(1, 1), (3, 5), (7, 2), (14, 14)])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (7, 5)])
def test_any_channel_count_batch_one_any_size(cin: int, cout: int, size: tuple[int, int]) -> None:
    m = DSConv(cin, cout, 3).train()  # training mode at batch 1: a BatchNorm would fail or degenerate here
    y = m(torch.randn(1, cin, *size))
    assert y.shape == (1, cout, *size) and torch.isfinite(y).all()


def test_output_is_local_so_tiling_is_exact() -> None:
    """No image-wide statistics (unlike GroupNorm/BatchNorm offsets): a crop's interior is unchanged."""
    torch.manual_seed(0)
    m = DSConv(3, 3, 3, extend_scope=1.0)
    x = torch.randn(1, 3, 24, 26)
    margin = 4  # offset conv 1 px + swing <= 1 px + tap 1 px, rounded up
    with torch.no_grad():
        full = m(x)
        crop = m(x[..., 5:19, 6:22])
    torch.testing.assert_close(
        crop[..., margin:-margin, margin:-margin],
        full[..., 5 + margin : 19 - margin, 6 + margin : 22 - margin],
    )


def test_inference_mode_then_training_give_the_same_output() -> None:
    """The cached base grid made under inference_mode must stay usable (and equal) with autograd on."""
    m = DSConv(3, 3, 3)
    x = torch.randn(1, 3, 6, 7)
    with torch.inference_mode():
        a = m(x)
    b = m(x)
    b.sum().backward()
    torch.testing.assert_close(a, b.detach())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="morph"):
        DSConv(2, 2, 3, morph="z")
    with pytest.raises(ValueError, match="odd"):
        DSConv(2, 2, 4)
