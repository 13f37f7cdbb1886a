"""LMFN model family: LKDN from official weights, cells, IFF algebra, variants, training steps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import zoo
from harness.measure import count_params as _n_params
from lmfn.cells import IFF, IFM, LKA, MSM, SCHEMES
from lmfn.network import LMFN, BSConvURep, UpsamplerRep
from lmfn.variants import MODEL_SPECS, PATTERNS, build_variant, parse_variant, valid_variants

SPEC_NAMES = [s["name"] for s in MODEL_SPECS]


# ----------------------------------------------------------------------------------------------------------
# official LKDN / LKDN-S checkpoints


@pytest.mark.slow
@pytest.mark.parametrize(("scale", "expected"), [(2, 303_812), (3, 311_387), (4, 321_992)])
def test_lkdn_official_weights_load_strictly(weights_dir: Path, scale: int, expected: int) -> None:
    from harness.checkpoint import load_into, read_checkpoint, unwrap_state_dict
    from harness.zoo import build

    path = weights_dir / "LKDN" / f"LKDN_x{scale}.pth"
    model = load_into(build("lkdn", scale), path, ("params_ema",))
    sd = unwrap_state_dict(read_checkpoint(path), ("params_ema",))
    assert _n_params(model) == sum(v.numel() for v in sd.values()) == expected
    assert build_variant("lka", scale).state_dict().keys() == sd.keys()  # variant lka is LKDN


@pytest.mark.slow
def test_lkdn_s_official_weights_load_strictly(weights_dir: Path) -> None:
    from harness.checkpoint import load_into
    from harness.zoo import build

    model = load_into(build("lkdn-s", 4), weights_dir / "LKDN" / "LKDN-S_x4.pth", ("params_ema",))
    assert _n_params(model) == 172_449


def _published(shared: Path, model: str, scale: int) -> dict[str, float]:
    with open(shared / "reference" / "published.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["model"] == model and int(row["scale"]) == scale:
                return {k: float(v) for k, v in row.items() if k.endswith(("_psnr", "_ssim")) and v}
    pytest.skip(f"no published row {model} x{scale}")


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_lkdn_x4_reproduces_published_psnr(
    shared: Path, data_root: Path, weights_dir: Path, dataset: str
) -> None:
    from harness.checkpoint import load_into
    from harness.evaluate import evaluate_model
    from harness.zoo import build

    torch.manual_seed(0)
    model = load_into(build("lkdn", 4), weights_dir / "LKDN" / "LKDN_x4.pth", ("params_ema",))
    r = evaluate_model(model, dataset=dataset, scale=4, data_root=data_root, protocol="basicsr")
    pub = _published(shared, "LKDN", 4)
    key = dataset.lower()
    assert r.n_images == {"Set5": 5, "Set14": 14}[dataset]
    assert abs(r.psnr - pub[f"{key}_psnr"]) <= 0.02, (r.psnr, pub[f"{key}_psnr"])
    assert abs(r.ssim - pub[f"{key}_ssim"]) <= 0.0005, (r.ssim, pub[f"{key}_ssim"])


# ----------------------------------------------------------------------------------------------------------
# LKDN-S training-time blocks: they must fold into the plain blocks (the official re-parameterisation)


def test_bsconvu_rep_folds_into_plain_bsconvu() -> None:
    torch.manual_seed(0)
    rep = BSConvURep(6, 6, 3)
    x = torch.randn(2, 6, 7, 5)
    with torch.no_grad():
        eye = torch.eye(6).view(6, 6, 1, 1)
        centre = torch.zeros(6, 1, 3, 3)
        centre[:, :, 1, 1] = 1.0 + rep.rep1x1.weight.view(6, 1)  # identity + per-channel 1x1 at the centre
        y = F.conv2d(x, rep.pw.weight + eye)
        folded = F.conv2d(y, rep.dw.weight + centre, rep.dw.bias + rep.rep1x1.bias, padding=1, groups=6)
        torch.testing.assert_close(rep(x), folded, atol=1e-5, rtol=1e-5)


def test_upsampler_rep_matches_official_bias_border_formulation() -> None:
    """LKDN's Upsampler_rep pads conv1x1's output with its bias; we pad the input with zeros. Same maths."""
    torch.manual_seed(0)
    up = UpsamplerRep(8, 3, 2)
    x = torch.randn(1, 8, 6, 7)
    with torch.no_grad():
        v1 = F.pad(up.conv1x1(x), (1, 1, 1, 1))
        b = up.conv1x1.bias.view(1, -1, 1, 1)
        v1[:, :, :1, :] = b
        v1[:, :, -1:, :] = b
        v1[:, :, :, :1] = b
        v1[:, :, :, -1:] = b
        ref = F.pixel_shuffle(up.conv1(x) + up.conv3(x) + up.conv3x3(v1), 2)
        torch.testing.assert_close(up(x), ref, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------
# cells


def _cells(dim: int) -> dict[str, nn.Module]:
    cells = {"lka": LKA(dim), "msm": MSM(dim)}
    cells.update({f"ifm@{s}": IFM(dim, s) for s in SCHEMES})
    return cells


@pytest.mark.parametrize("size", [(1, 1), (5, 7), (13, 10)])
def test_every_cell_keeps_shape(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 12, *size)
    with torch.no_grad():
        for name, cell in _cells(12).items():
            y = cell(x)
            assert y.shape == x.shape, name
            assert torch.isfinite(y).all(), name


def test_lka_is_the_official_attention() -> None:
    """eq. 1: DWDConv(DWConv(PWConv(x))) * x, dilated 5x5 with dilation 3 (padding 6), no sigmoid."""
    torch.manual_seed(0)
    lka = LKA(4)
    x = torch.randn(1, 4, 9, 8)
    with torch.no_grad():
        a = F.conv2d(x, lka.pointwise.weight, lka.pointwise.bias)
        a = F.conv2d(a, lka.depthwise.weight, lka.depthwise.bias, padding=2, groups=4)
        a = F.conv2d(
            a, lka.depthwise_dilated.weight, lka.depthwise_dilated.bias, padding=6, dilation=3, groups=4
        )
        torch.testing.assert_close(lka(x), a * x)


def test_msm_pools_each_group_by_its_scale_and_restores_alignment() -> None:
    """With identity DSConvs and identity 1x1, group i is a 2**i max-pool, nearest-upsampled and cropped."""
    torch.manual_seed(0)
    msm = MSM(8)
    for conv in msm.mfr:
        conv.forward = lambda t, out=None: t if out is None else out.copy_(t)  # isolate pooling/resizing
    with torch.no_grad():
        msm.aggr.weight.copy_(torch.eye(8).view(8, 8, 1, 1))
        msm.aggr.bias.zero_()
    msm.act = nn.Identity()
    x = torch.randn(1, 8, 11, 6)  # 11 not divisible by 2, 4 or 8
    with torch.no_grad():
        y = msm(x) / x
    for i in range(4):
        s = 2**i
        g = x[:, 2 * i : 2 * i + 2]
        padded = F.pad(g, (0, -6 % s, 0, -11 % s), value=float("-inf"))  # pad to whole windows, never wins
        ref = padded.unfold(2, s, s).unfold(3, s, s).amax(dim=(-1, -2))  # independent max-pool
        ref = ref.repeat_interleave(s, 2).repeat_interleave(s, 3)[..., :11, :6]
        torch.testing.assert_close(y[:, 2 * i : 2 * i + 2], ref, atol=1e-5, rtol=1e-4)


def test_msm_splits_uneven_channel_counts() -> None:
    msm = MSM(10)
    assert msm.sizes == [3, 3, 2, 2]
    assert msm(torch.randn(1, 10, 5, 3)).shape == (1, 10, 5, 3)


def _patch_branches(iff: IFF, fn) -> None:
    for name in ("lka", "msm", "lka_l", "lka_m", "msm_l", "msm_m"):
        if hasattr(iff, name):
            getattr(iff, name).forward = fn


@pytest.mark.parametrize("scheme", ["mr", "mr-cross"])
def test_merge_and_run_with_zero_branches_gives_the_mean(scheme: str) -> None:
    iff = IFF(8, scheme)
    _patch_branches(iff, lambda t: torch.zeros_like(t))
    x = torch.randn(2, 8, 5, 3)
    xl, xm = x[:, :4], x[:, 4:]
    mean = (xl + xm) / 2
    torch.testing.assert_close(iff.mix(x), torch.cat([mean, mean], dim=1))
    with torch.no_grad():  # eq. 8: 1x1 of the concat + input
        torch.testing.assert_close(iff(x), iff.proj(torch.cat([mean, mean], 1)) + x)


def test_merge_and_run_eq_6_7_by_hand() -> None:
    """Branches tagged so the order shows: LKA -> 2t, MSM -> 3t; eq. 6 then eq. 7 worked out by hand."""
    iff = IFF(8, "mr")
    for name, k in (("lka_l", 2.0), ("lka_m", 2.0), ("msm_l", 3.0), ("msm_m", 3.0)):
        getattr(iff, name).forward = lambda t, k=k: k * t
    x = torch.randn(1, 8, 4, 4)
    a, b = x[:, :4], x[:, 4:]
    zl, zm = 2 * a + (a + b) / 2, 2 * b + (a + b) / 2  # eq. 6
    yl, ym = 3 * zl + (zl + zm) / 2, 3 * zm + (zl + zm) / 2  # eq. 7
    torch.testing.assert_close(iff.mix(x), torch.cat([yl, ym], dim=1))


def test_mr_cross_runs_lka_msm_on_one_half_and_msm_lka_on_the_other() -> None:
    iff = IFF(8, "mr-cross")
    calls = []
    for name in ("lka_l", "lka_m", "msm_l", "msm_m"):
        getattr(iff, name).forward = lambda t, name=name: calls.append(name) or t
    iff.mix(torch.randn(1, 8, 3, 3))
    assert calls == ["lka_l", "msm_m", "msm_l", "lka_m"]


def test_cascade_and_parallel_compositions() -> None:
    x = torch.randn(1, 8, 4, 5)
    cas = IFF(8, "cascade")
    cas.lka.forward = lambda t: t + 1.0
    cas.msm.forward = lambda t: 2.0 * t
    torch.testing.assert_close(cas.mix(x), 2.0 * (x + 1.0))  # MSM(LKA(x)), whole tensor
    par = IFF(8, "parallel")
    assert par.lka.pointwise.in_channels == 4 and par.msm.aggr.in_channels == 4
    par.lka.forward = lambda t: t + 1.0
    par.msm.forward = lambda t: 2.0 * t
    torch.testing.assert_close(par.mix(x), torch.cat([x[:, :4] + 1.0, 2.0 * x[:, 4:]], dim=1))


def test_ifm_eq_9_10() -> None:
    """IFM = 1x1(first half * IFF(second half)) + x, halves of 1x1(LayerNorm(x)); checked with IFF -> 5t."""
    torch.manual_seed(0)
    ifm = IFM(8)
    ifm.iff.forward = lambda t: 5.0 * t
    x = torch.randn(2, 8, 3, 4)
    with torch.no_grad():
        n = F.layer_norm(x.permute(0, 2, 3, 1), (8,), ifm.norm.weight, ifm.norm.bias, ifm.norm.eps)
        h = F.conv2d(n.permute(0, 3, 1, 2), ifm.proj_in.weight, ifm.proj_in.bias)
        ref = F.conv2d(h[:, :8] * 5.0 * h[:, 8:], ifm.proj_out.weight, ifm.proj_out.bias) + x
        torch.testing.assert_close(ifm(x), ref, atol=1e-5, rtol=1e-5)


def test_mr_halves_have_separate_weights() -> None:
    iff = IFF(8, "mr")
    assert iff.lka_l.pointwise.weight.data_ptr() != iff.lka_m.pointwise.weight.data_ptr()
    assert iff.msm_l.aggr.weight.data_ptr() != iff.msm_m.aggr.weight.data_ptr()


# ----------------------------------------------------------------------------------------------------------
# variants and network


def test_variant_names() -> None:
    assert parse_variant("lmfn") == ("lka-msm-ifm", "mr")
    assert parse_variant("LKDN") == ("lka", "mr")
    assert parse_variant("msm-ifm@mr-cross") == ("msm-ifm", "mr-cross")
    assert parse_variant("lka-ifm") == ("lka-ifm", "mr")
    for bad in ("lka-lka", "ifm@serial", "msm-lka", "", "lmfn@parallel"):
        with pytest.raises(ValueError, match="valid patterns: lka, msm, ifm"):
            parse_variant(bad)
    assert {"lmfn", "lkdn", "lka-msm-ifm@parallel"} <= set(valid_variants())


def test_model_specs_cover_every_pattern_and_scheme() -> None:
    expected = {"lkdn", "lkdn-s"}  # lmfn is an alias of lka-msm-ifm@mr, not a second entry
    expected |= {p for p in PATTERNS if "ifm" not in p}
    expected |= {f"{p}@{s}" for p in PATTERNS if "ifm" in p for s in SCHEMES}
    assert len(SPEC_NAMES) == len(set(SPEC_NAMES)) and set(SPEC_NAMES) == expected
    from harness.zoo import get_spec

    spec = get_spec("lkdn")
    assert spec.checkpoints == {2: "LKDN_x2.pth", 3: "LKDN_x3.pth", 4: "LKDN_x4.pth"}
    assert spec.checkpoint_keys[0] == "params_ema" and spec.published_name == "LKDN"
    assert get_spec("lkdn-s").scales == (4,) and get_spec("lmfn").published_name == "LMFN"


def test_cell_pattern_cycles_over_blocks() -> None:
    m = build_variant("lmfn", 4)
    assert m.cells == ["lka", "msm", "ifm", "lka", "msm", "ifm", "lka", "msm"]
    assert [type(getattr(m, f"B{i}").atten).__name__ for i in range(1, 9)] == [
        "LKA", "MSM", "IFM", "LKA", "MSM", "IFM", "LKA", "MSM",
    ]  # fmt: skip
    assert all(getattr(m, f"B{i}").atten.iff.scheme == "mr" for i in (3, 6))
    assert build_variant("msm-ifm@cascade", 2).B2.atten.iff.scheme == "cascade"


def test_generic_constructor() -> None:
    m = LMFN(upscale=3, num_feat=16, num_blocks=3, cells=["msm", "ifm"], scheme="parallel")
    assert m.block_names == ["B1", "B2", "B3"] and m.cells == ["msm", "ifm", "msm"]
    assert m(torch.rand(1, 3, 5, 4)).shape == (1, 3, 15, 12)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(1, 1), (7, 9), (10, 13)])
def test_lmfn_forward_any_lr_size(scale: int, size: tuple[int, int]) -> None:
    m = build_variant("lmfn", scale).eval()
    with torch.no_grad():
        y = m(torch.rand(1, 3, *size))
    assert y.shape == (1, 3, size[0] * scale, size[1] * scale) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_variant_trains_one_step(name: str) -> None:
    """forward, L1, backward, optimizer step at a small odd size: finite loss and grads, weights move."""
    torch.manual_seed(0)
    spec = next(s for s in MODEL_SPECS if s["name"] == name)
    scale = spec.get("scales", (2, 3, 4))[SPEC_NAMES.index(name) % len(spec.get("scales", (2, 3, 4)))]
    model = spec["build"](scale).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lr = torch.rand(2, 3, 9, 11)
    hr = torch.rand(2, 3, 9 * scale, 11 * scale)
    loss = F.l1_loss(model(lr), hr)
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    offset_grads = [p.grad for n, p in model.named_parameters() if "offset_conv" in n]
    assert all(g.abs().sum() > 0 for g in offset_grads)  # snake offsets learn (checked where MSM exists)
    before = model.c1.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.c1.weight)
    with torch.no_grad():
        assert torch.isfinite(model(lr)).all()


def test_mr_cross_checkpoint_without_its_marker_still_loads_strictly() -> None:
    # checkpoints saved before the mr-cross marker existed: everything else must still match exactly
    src = zoo.build("lka-msm-ifm@mr-cross", 4)
    old = {k: v for k, v in src.state_dict().items() if not k.endswith("iff.cross")}
    assert len(old) < len(src.state_dict())
    dst = zoo.build("lka-msm-ifm@mr-cross", 4)
    dst.load_state_dict(old, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(), src.state_dict().values(), strict=True))
    with pytest.raises(RuntimeError, match="Unexpected"):  # the marker does not make mr accept mr-cross
        zoo.build("lka-msm-ifm@mr", 4).load_state_dict(src.state_dict(), strict=True)
