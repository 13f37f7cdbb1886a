"""NGswin and DiVANet (official NGswin x2/x3 weights are checked in tests/test_detect.py): parameter counts against the published figures,
state-dict keys and shapes against the official code, building blocks against second implementations
(torch's legacy weight_norm, torchvision's symmetric pad, timm's relative position index, einops' token
rearrange, brute-force loops), output shapes at odd sizes and one training step."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import published_row
from torch import nn

from baselines.divanet import DiVAAttention, DiVANet, WNConv2d
from baselines.ngswin import NGramContext, NGswin, _pad_symmetric, _relative_position_index
from harness import zoo
from harness.checkpoint import load_into
from harness.measure import count_params as _n_params

MODELS = {"ngswin": ("NGswin", NGswin), "divanet": ("DiVANet", DiVANet)}
SCALES = (2, 3, 4)


@pytest.fixture(autouse=True)
def _one_thread():
    # small tensors: intra-op threading only adds overhead on the 2-core CI box
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _published_k(shared: Path, row: str, scale: int) -> float:
    return float(published_row(shared, row, scale)["params_k"])


# ---------------------------------------------------------------- registry, parameter counts


@pytest.mark.parametrize("name", list(MODELS))
def test_zoo_registration(name: str) -> None:
    spec = zoo.get_spec(name)
    assert spec.published_name == MODELS[name][0]
    assert spec.family == "baseline" and tuple(spec.scales) == SCALES
    # the official NGswin x2/x3 files (pretrain/ of rami0205/NGramSwin); DiVANet has none
    assert dict(spec.checkpoints) == ({2: "NGswin_x2.pth", 3: "NGswin_x3.pth"} if name == "ngswin" else {})
    for s in SCALES:
        m = zoo.build(name, s)
        assert isinstance(m, MODELS[name][1]) and m.scale == s


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("scale", SCALES)
def test_params_match_published(name: str, scale: int, shared: Path) -> None:
    published_k = _published_k(shared, MODELS[name][0], scale)
    assert _n_params(zoo.build(name, scale)) / 1000 == pytest.approx(published_k, rel=0.01)


def _wn_conv(cin: int, cout: int, k: int, groups: int = 1) -> int:
    # weight_v + weight_g (one per output channel) + bias
    return cout * cin // groups * k * k + 2 * cout


@pytest.mark.parametrize("scale", SCALES)
def test_divanet_param_count_by_hand(scale: int) -> None:
    # counted layer by layer from the official ops.py / divanet.py / Attention_module.py
    block = _wn_conv(64, 384, 1) + _wn_conv(384, 51, 1) + _wn_conv(51, 64, 3) + 2 * (64 * 64 + 64)  # + DiVA
    group = 3 * block + _wn_conv(256, 64, 1) + _wn_conv(192, 64, 1)
    up = {2: _wn_conv(64, 256, 3, 4), 3: _wn_conv(64, 576, 3, 4), 4: 2 * _wn_conv(64, 256, 3, 4)}[scale]
    mean_shift = 2 * (9 + 3)  # frozen, but parameters of the official model
    expected = _wn_conv(3, 64, 3) + 3 * group + _wn_conv(256, 64, 1) + _wn_conv(192, 64, 1) + up
    expected += _wn_conv(64, 3, 3) + mean_shift
    model = DiVANet(scale)
    assert _n_params(model) == expected
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == mean_shift


# ---------------------------------------------------------------- state-dict keys against the official code

# (key, shape) read off the official NGswin code with its default arguments (training patch 64)
NGSWIN_KEYS = {
    "shallow_extract.conv1.weight": (64, 3, 3, 3),
    "encoder_layer1.blocks.0.ngram_window_partition.ngram_context.unigram_embed.weight": (32, 2, 8, 8),
    # n-gram attention at 32 ch with 6 heads: head_dim 5, inner width 30
    "encoder_layer1.blocks.0.ngram_window_partition.ngram_context.ngram_attn.qkv.weight": (90, 32),
    "encoder_layer1.blocks.0.ngram_window_partition.ngram_context.ngram_attn.proj.weight": (32, 30),
    "encoder_layer1.blocks.0.ngram_window_partition.ngram_context.ngram_attn.relative_position_bias_table": (
        9,
        6,
    ),
    "encoder_layer1.blocks.0.ngram_window_partition.ngram_context.ngram_attn.relative_position_index": (4, 4),
    "encoder_layer1.blocks.0.ngram_window_partition.ngram_context.merge.weight": (64, 64, 1, 1),
    "encoder_layer1.blocks.0.attn.logit_scale": (6, 1, 1),
    "encoder_layer1.blocks.0.attn.qkv.weight": (180, 64),
    "encoder_layer1.blocks.0.attn.proj.weight": (64, 60),
    "encoder_layer1.blocks.0.attn.relative_position_bias_table": (225, 6),
    "encoder_layer1.blocks.0.attn.relative_position_index": (64, 64),
    "encoder_layer1.blocks.0.ffn.fc1.weight": (128, 64),
    "encoder_layer1.blocks.5.norm2.bias": (64,),
    "encoder_layer1.blocks.1.attn_mask": (64, 64, 64),  # (64/8)^2 windows of the 64x64 training patch
    "encoder_layer1.downsample.norm.weight": (256,),
    "encoder_layer1.downsample.reduction.weight": (64, 256),
    "encoder_layer2.across_cascade_proj.weight": (64, 128),
    "encoder_layer2.blocks.3.attn_mask": (16, 64, 64),
    "encoder_layer2.blocks.0.attn.qkv.weight": (192, 64),  # 4 heads of 16
    "encoder_layer3.across_cascade_proj.weight": (64, 192),
    "encoder_layer3.blocks.1.attn_mask": (4, 64, 64),
    "bottleneck.depthwise.weight": (84, 1, 3, 3),  # 64 + 64/4 + 64/16 channels after the pixel shuffles
    "bottleneck.pointwise.weight": (64, 84),
    "bottleneck.norm.weight": (64,),
    "decoder_layer1.blocks.5.attn_mask": (16, 64, 64),  # the decoder is told a 32x32 training grid
    "norm.weight": (64,),
    "to_target.to_origin.weight": (3, 3, 3, 3),
}
NGSWIN_TOP = {"shallow_extract", "encoder_layer1", "encoder_layer2", "encoder_layer3", "bottleneck"}
NGSWIN_TOP |= {"decoder_layer1", "norm", "to_target"}


def test_ngswin_state_dict_matches_official_layout() -> None:
    net = NGswin(2)
    saved = net.state_dict()
    sd = {**saved, **dict(net.named_buffers())}  # the recomputed buffers are not saved, but keep their shapes
    for k, shape in NGSWIN_KEYS.items():
        assert k in sd, k
        assert tuple(sd[k].shape) == shape, k
    # the official files omit exactly these (the official code recomputes them): non-persistent here
    recomputed = [k for k in sd if k.endswith(("attn_mask", "relative_position_index"))]
    assert recomputed and not any(k in saved for k in recomputed)
    assert {k.split(".")[0] for k in sd} == NGSWIN_TOP
    assert "encoder_layer3.downsample.norm.weight" not in sd  # the last stage has no patch merging
    assert "encoder_layer1.across_cascade_proj.weight" not in sd  # Identity in the first stage
    # shifted (odd) blocks own a mask, unshifted ones none: 3 + 2 + 2 encoder + 3 decoder
    masks = sorted(k for k in sd if k.endswith("attn_mask"))
    assert len(masks) == 10 and all(int(k.split(".")[2]) % 2 == 1 for k in masks)
    for s in SCALES:
        up = NGswin(s).state_dict()["to_target.before_shuffle.weight"]
        assert tuple(up.shape) == (3 * s * s, 64, 3, 3)


DIVANET_KEYS = {
    "sub_mean.shifter.weight": (3, 3, 1, 1),
    "add_mean.shifter.bias": (3,),
    "entry_1.weight_g": (64, 1, 1, 1),
    "entry_1.weight_v": (64, 3, 3, 3),
    "b1.rb1.DiVA.conv_h.weight": (64, 64, 1, 1),
    "b3.rb3.DiVA.conv_w.bias": (64,),
    "b2.rb2.body.0.weight_v": (384, 64, 1, 1),
    "b2.rb2.body.2.weight_v": (51, 384, 1, 1),  # int(64 * 0.8)
    "b2.rb2.body.3.weight_v": (64, 51, 3, 3),
    "b1.reduction_1.conv.weight_v": (64, 256, 1, 1),
    "b1.reduction_2.conv.weight_g": (64, 1, 1, 1),
    "reduction_1.conv.weight_v": (64, 256, 1, 1),
    "reduction_2.conv.bias": (64,),
    "exit1.weight_v": (3, 64, 3, 3),
}
DIVANET_UP = {
    2: {"upsample.up.body.0.weight_v": (256, 16, 3, 3)},
    3: {"upsample.up.body.0.weight_v": (576, 16, 3, 3)},
    4: {"upsample.up.body.0.weight_v": (256, 16, 3, 3), "upsample.up.body.3.weight_v": (256, 16, 3, 3)},
}


@pytest.mark.parametrize("scale", SCALES)
def test_divanet_state_dict_matches_official_layout(scale: int) -> None:
    sd = DiVANet(scale).state_dict()
    for k, shape in {**DIVANET_KEYS, **DIVANET_UP[scale]}.items():
        assert k in sd, k
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.endswith(".weight") and ("body" in k or "entry" in k or "exit" in k) for k in sd)
    up_convs = {k.rsplit(".", 1)[0] for k in sd if k.startswith("upsample.")}
    assert len(up_convs) == (2 if scale == 4 else 1)


@pytest.mark.parametrize("name,container", [("ngswin", None), ("divanet", "model_state_dict")])
def test_checkpoint_in_official_container_loads_strictly(
    name: str, container: str | None, tmp_path: Path
) -> None:
    # NGswin's released files are flat state dicts; DiVANet's solver saves {'model_state_dict': ...}
    torch.manual_seed(1)
    src = zoo.build(name, 3)
    sd = src.state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({container: sd, "step": 1} if container else sd, path)
    torch.manual_seed(2)
    dst = load_into(zoo.build(name, 3), path, zoo.get_spec(name).checkpoint_keys)
    for k, v in dst.state_dict().items():
        assert torch.equal(v, sd[k]), k


# ---------------------------------------------------------------- blocks against second implementations


def test_wnconv_equals_torch_weight_norm() -> None:
    torch.manual_seed(0)
    ours = WNConv2d(16, 32, 3, padding=1, groups=4)
    with pytest.warns(FutureWarning):  # the legacy API the official checkpoints were saved with
        legacy = nn.utils.weight_norm(nn.Conv2d(16, 32, 3, padding=1, groups=4))
    with torch.no_grad():
        ours.weight_g.mul_(torch.rand_like(ours.weight_g) + 0.5)
    legacy.load_state_dict(ours.state_dict(), strict=True)  # same keys, same shapes
    x = torch.randn(2, 16, 7, 9)
    torch.testing.assert_close(ours(x), legacy(x), rtol=1e-5, atol=1e-6)
    # at construction g holds ||v||, so the conv starts as the plain default-initialised conv
    fresh = WNConv2d(8, 4, 3)
    torch.testing.assert_close(fresh.weight_g.flatten(), fresh.weight_v.flatten(1).norm(dim=1))


def test_diva_attention_is_directional_variance_gating() -> None:
    torch.manual_seed(0)
    m = DiVAAttention(64)
    x = torch.randn(2, 64, 5, 7)
    # official helpers: mean over the axis, then mean squared deviation (no square root)
    var_rows = ((x - x.mean(3, keepdim=True)) ** 2).sum(3, keepdim=True) / x.shape[3]
    var_cols = ((x - x.mean(2, keepdim=True)) ** 2).sum(2, keepdim=True) / x.shape[2]
    a_h = torch.sigmoid(
        torch.einsum("oc,bchw->bohw", m.conv_h.weight[:, :, 0, 0], var_rows) + m.conv_h.bias[:, None, None]
    )
    a_w = torch.sigmoid(
        torch.einsum("oc,bchw->bohw", m.conv_w.weight[:, :, 0, 0], var_cols) + m.conv_w.bias[:, None, None]
    )
    torch.testing.assert_close(m(x), x * a_w * a_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size,pad", [((5, 7), (3, 2)), ((8, 8), (8, 0)), ((4, 9), (0, 6))])
def test_symmetric_pad_matches_torchvision(size: tuple[int, int], pad: tuple[int, int]) -> None:
    tf = pytest.importorskip("torchvision.transforms.functional")
    x = torch.randn(1, 3, *size)
    ref = tf.pad(x, [0, 0, pad[1], pad[0]], padding_mode="symmetric")  # left, top, right, bottom
    torch.testing.assert_close(_pad_symmetric(x, *pad), ref, rtol=0, atol=0)


def test_symmetric_pad_longer_than_image_keeps_mirroring() -> None:
    x = torch.arange(3.0).view(1, 1, 1, 3)
    assert _pad_symmetric(x, 0, 8).flatten().tolist() == [0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1]


@pytest.mark.parametrize("h,w", [(8, 8), (2, 3)])
def test_relative_position_index_matches_timm(h: int, w: int) -> None:
    swin = pytest.importorskip("timm.models.swin_transformer")
    assert torch.equal(_relative_position_index(h, w), swin.get_relative_position_index(h, w))


def test_scdp_pixel_shuffle_equals_official_token_rearrange() -> None:
    einops = pytest.importorskip("einops")
    b, h, w, r, c = 2, 3, 5, 4, 4
    tokens = torch.randn(b, h * w, c * r * r)
    # official: rearrange(x, 'b (h w) (c ch cw) -> b (h ch w cw) c') at the 1/r grid
    ref = einops.rearrange(tokens, "b (h w) (c ch cw) -> b (h ch w cw) c", h=h, ch=r, cw=r)
    ours = F.pixel_shuffle(tokens.transpose(1, 2).reshape(b, -1, h, w), r).flatten(2).transpose(1, 2)
    assert torch.equal(ours, ref)


def _context_by_loops(m: NGramContext, x: torch.Tensor) -> torch.Tensor:
    """Brute force from the paper and the official padding rule: for every window (i, j), attention over the
    n x n unigrams at rows i..i+n-1 (forward) or i-n+1..i (backward), averaged; a position past the edge
    takes the unigram n steps back inside (official 'seq_refl_win_pad'; for n = 2 the edge's neighbour)."""
    n = m.ngram
    u = m.unigram_embed(x.permute(0, 3, 1, 2))  # B, C, wh, ww
    b, c, wh, ww = u.shape

    def fold(i: int, size: int) -> int:
        if i >= size:
            return i - n  # forward pad rows size..size+n-2 copy rows size-n..size-2
        if i < 0:
            return i + n  # backward pad rows -(n-1)..-1 copy rows 1..n-1
        return i

    outs = []
    for back in (0, n - 1):  # forward windows start at (i, j), backward ones n-1 rows/cols earlier
        ctx = torch.zeros(b, c, wh, ww)
        for i in range(wh):
            for j in range(ww):
                rows = [fold(i - back + k, wh) for k in range(n)]
                cols = [fold(j - back + k, ww) for k in range(n)]
                toks = torch.stack([u[:, :, r, q] for r in rows for q in cols], dim=1)  # row-major window
                ctx[:, :, i, j] = m.ngram_attn(toks).mean(dim=1)
        outs.append(ctx)
    return m.merge(torch.cat(outs, dim=1)).permute(0, 2, 3, 1)


@pytest.mark.parametrize("grid", [(3, 4), (2, 2)])
def test_ngram_context_equals_brute_force(grid: tuple[int, int]) -> None:
    torch.manual_seed(0)
    m = NGramContext(dim=16, window_size=2, ngram=2, ngram_num_heads=3).eval()
    with torch.no_grad():
        m.ngram_attn.relative_position_bias_table.normal_()  # make token order matter
        x = torch.randn(2, 2 * grid[0], 2 * grid[1], 16)
        ours = m(x)[:, :, :, 0, 0, :]
        torch.testing.assert_close(ours, _context_by_loops(m, x), rtol=1e-5, atol=1e-5)


def test_window_attention_equals_per_head_formula() -> None:
    torch.manual_seed(0)
    attn = NGswin(2).encoder_layer2.blocks[1].attn  # 64 ch, 4 heads, window 8
    with torch.no_grad():
        attn.relative_position_bias_table.normal_()
        attn.logit_scale.fill_(math.log(200.0))  # above the cap: must clamp to 100
    x = torch.randn(3, 64, 64)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    idx = _relative_position_index(8, 8)
    heads = []
    for h in range(4):
        sl = slice(16 * h, 16 * (h + 1))
        cos = F.cosine_similarity(q[:, :, None, sl], k[:, None, :, sl], dim=-1)
        logits = 100.0 * cos + attn.relative_position_bias_table[idx, h]
        heads.append(logits.softmax(-1) @ v[:, :, sl])
    ref = attn.proj(torch.cat(heads, dim=-1))
    torch.testing.assert_close(attn(x), ref, rtol=1e-4, atol=1e-5)


def test_shift_mask_buffer_is_rebuilt_for_other_grids() -> None:
    blk = NGswin(2).encoder_layer1.blocks[1]
    assert torch.equal(blk.make_mask((64, 64)), blk.attn_mask)
    m = blk.make_mask((16, 24))
    assert m.shape == (6, 64, 64)
    assert (m[0] == 0).all()  # an interior window needs no mask
    assert set(m.unique().tolist()) == {0.0, -100.0}


# ---------------------------------------------------------------- whole models: shapes, padding, training


@pytest.mark.parametrize("scale", SCALES)
def test_ngswin_odd_input_shape(scale: int) -> None:
    torch.manual_seed(0)
    m = NGswin(scale).eval()
    with torch.no_grad():
        y = m(torch.rand(1, 3, 17, 23))
    assert y.shape == (1, 3, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()


def test_ngswin_pads_like_the_official_test_script() -> None:
    # official dp_engine_test: TF.pad(lr, (0, 0, padw, padh), padding_mode="symmetric") to multiples of 32,
    # run, crop to lr * scale. Our model does the padding itself, so a raw input must give the same pixels.
    tf = pytest.importorskip("torchvision.transforms.functional")
    torch.manual_seed(0)
    m = NGswin(3).eval()
    x = torch.rand(1, 3, 40, 45)
    with torch.no_grad():
        ours = m(x)
        script = m(tf.pad(x, [0, 0, 64 - 45, 64 - 40], padding_mode="symmetric"))[..., : 40 * 3, : 45 * 3]
    assert ours.shape == (1, 3, 120, 135)
    torch.testing.assert_close(ours, script, rtol=0, atol=1e-6)


@pytest.mark.parametrize("scale", SCALES)
def test_divanet_odd_input_shape(scale: int) -> None:
    m = DiVANet(scale).eval()
    with torch.no_grad():
        y = m(torch.rand(2, 3, 13, 9))
    assert y.shape == (2, 3, 13 * scale, 9 * scale)
    assert torch.isfinite(y).all()


def test_divanet_global_skip_is_pytorch_bicubic() -> None:
    # with the last conv zeroed only the global skip is left: PyTorch bicubic of the input (the mean shift
    # cancels because bicubic weights sum to one)
    torch.manual_seed(0)
    m = DiVANet(2).eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        y = m(x)
        m.exit1.weight_g.zero_()
        m.exit1.bias.zero_()
        z = m(x)
    torch.testing.assert_close(z, F.interpolate(x, size=(24, 20), mode="bicubic", align_corners=False))
    assert not torch.allclose(y, z)


@pytest.mark.parametrize("name", list(MODELS))
def test_training_step(name: str) -> None:
    torch.manual_seed(0)
    model = zoo.build(name, 2).train()
    lr_img = torch.rand(2, 3, 48, 48)
    hr_img = torch.rand(2, 3, 96, 96)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss = F.l1_loss(model(lr_img), hr_img)
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
            assert p.grad.abs().sum() > 0, n
        else:
            assert p.grad is None and "mean" in n, n
    opt.step()
    after = model.state_dict()
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    # buffers and frozen parameters stay; (almost) every trainable tensor moves (a few gradients can be too
    # small for one Adam step to change a float32 value, e.g. deep logit scales)
    assert set(changed) <= set(trainable)
    assert len(changed) >= 0.95 * len(trainable)
