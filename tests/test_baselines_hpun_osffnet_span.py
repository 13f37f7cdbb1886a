"""SPAN (baselines/span.py) against spandrel's SPAN, the published x4 sizes and closed-form algebra.

HPUN and OSFFNet have no reimplementation: neither has public code and the layer-by-layer text of either
paper could not be read, so nothing is registered under their names (see the issue 5 report).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from baselines.span import SPAN, Conv3XC
from harness import zoo
from harness.measure import count_params as _n_params

spandrel_span = pytest.importorskip("spandrel.architectures.SPAN")

# Deployed (re-parameterised) params as the SPAN paper counts them, x4 table: SPAN (52 ch) 498K,
# SPAN-S (48 ch) 426K (Wan et al., arXiv 2311.12770 / CVPRW 2024). We found no x2 / x3 figures.
PUBLISHED_PARAMS_X4 = {"span": 498_000, "span-s": 426_000}
CHANNELS = {"span": 52, "span-s": 48}


def _deployed_params_closed_form(c: int, scale: int, colours: int = 3) -> int:
    """Every Conv3XC collapses to one 3x3 conv with bias: conv_1 (3 -> c), 18 in the blocks, conv_2; then
    the 1x1 concat conv (4c -> c) and the upsampler conv (c -> 3 s^2)."""
    conv3 = lambda cin, cout: cin * cout * 9 + cout  # noqa: E731
    return conv3(colours, c) + 19 * conv3(c, c) + (4 * c * c + c) + conv3(c, colours * scale**2)


@pytest.mark.parametrize(("name", "scale"), [("span", 2), ("span", 3), ("span", 4), ("span-s", 4)])
def test_same_output_as_spandrel_with_identical_weights(name: str, scale: int) -> None:
    torch.manual_seed(scale)
    ref = spandrel_span.SPAN(num_in_ch=3, num_out_ch=3, feature_channels=CHANNELS[name], upscale=scale)
    ours = zoo.build(name, scale)
    # strict: same parameter names and shapes as the official layout spandrel mirrors
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.double()
    ours.double()
    x = torch.rand(2, 3, 11, 7, dtype=torch.float64)
    for training in (True, False):  # the branch path and the fused-conv path
        ref.train(training)
        ours.train(training)
        with torch.no_grad():
            expected, got = ref(x), ours(x)
        assert got.shape == (2, 3, 11 * scale, 7 * scale)
        assert torch.allclose(got, expected, rtol=0, atol=1e-5), (training, (got - expected).abs().max())


@pytest.mark.parametrize("scale", [2, 4])
def test_spandrel_recognises_our_state_dict_as_span(scale: int) -> None:
    spandrel = pytest.importorskip("spandrel")
    desc = spandrel.ModelLoader().load_from_state_dict(zoo.build("span", scale).state_dict())
    assert desc.architecture.id == "SPAN"
    assert desc.scale == scale
    assert "52nf" in desc.tags


@pytest.mark.parametrize("name", ["span", "span-s"])
def test_deployed_params_within_one_percent_of_published_x4(name: str) -> None:
    n = _n_params(zoo.build(name, 4).deploy())
    published = PUBLISHED_PARAMS_X4[name]
    assert abs(n - published) / published < 0.01, (name, n, published)


@pytest.mark.parametrize("name", ["span", "span-s"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_deployed_params_closed_form(name: str, scale: int) -> None:
    model = zoo.build(name, scale)
    assert _n_params(model.deploy()) == _deployed_params_closed_form(CHANNELS[name], scale)
    # the training module also holds the expansion branches and the frozen eval_conv copy
    assert _n_params(model) > 4 * _n_params(model.deploy())


def test_fused_conv_equals_branches() -> None:
    """Re-parameterisation algebra on one Conv3XC, including its border (padding before the 1x1)."""
    torch.manual_seed(0)
    conv = Conv3XC(5, 7).double()
    for p in conv.parameters():  # non-trivial biases so the border term matters
        torch.nn.init.normal_(p)
    x = torch.randn(1, 5, 6, 9, dtype=torch.float64)
    conv.train()
    branches = conv(x)
    weight, bias = conv.fused_weight_bias()
    assert torch.allclose(F.conv2d(x, weight, bias, padding=1), branches, atol=1e-10)
    conv.reparameterize()
    assert torch.allclose(conv.eval_conv(x), branches, atol=1e-10)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_deploy_equals_full_model(scale: int) -> None:
    torch.manual_seed(1)
    model = SPAN(feature_channels=16, upscale=scale).double()
    x = torch.rand(1, 3, 9, 10, dtype=torch.float64)
    deployed = model.deploy()
    assert not any(isinstance(m, Conv3XC) for m in deployed.modules())
    with torch.no_grad():
        train_out = model.train()(x)
        eval_out = model.eval()(x)
        deploy_out = deployed(x)
    assert torch.allclose(eval_out, train_out, atol=1e-9)
    assert torch.allclose(deploy_out, eval_out, atol=1e-9)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (13, 16)])
def test_forward_shape_any_size(scale: int, size: tuple[int, int]) -> None:
    model = zoo.build("span", scale).eval()
    with torch.inference_mode():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(out).all()


def test_training_step_on_48px_patches() -> None:
    torch.manual_seed(0)
    scale = 4
    model = zoo.build("span", scale).train()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "eval_conv" in n}
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    opt = torch.optim.Adam(trainable, lr=1e-3)
    lr = torch.rand(2, 3, 48, 48)
    hr = torch.rand(2, 3, 48 * scale, 48 * scale)
    loss = F.l1_loss(model(lr), hr)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in trainable)
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, trainable, strict=True))
    # eval_conv is derived, not learned: the optimiser never touches it
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if "eval_conv" in n)
    model.eval()  # leaving training refreshes the stored fused convs from the trained branches
    for m in model.modules():
        if isinstance(m, Conv3XC):
            weight, bias = m.fused_weight_bias()
            assert torch.equal(m.eval_conv.weight, weight) and torch.equal(m.eval_conv.bias, bias)
    with torch.no_grad():
        assert torch.isfinite(model(lr)).all()
