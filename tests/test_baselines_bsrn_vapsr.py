"""BSRN, VapSR and VapSR-S against their official checkpoints and published numbers.

Truth used here: the official checkpoint files (tensor names, shapes and counts), published.csv (BSRN
x2/x3/x4, VapSR x4), and the VapSR paper / README for the rows published.csv lacks (constants below).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.bsrn import BSRN, CCALayer
from baselines.vapsr import VAB, VapSR
from harness import zoo
from harness.checkpoint import CheckpointMismatchError, load_into, read_checkpoint
from harness.measure import count_params as _n_params

# (zoo name, scale) -> official file under weights/
OFFICIAL = {
    ("bsrn", 2): "BSRN/net_g_BSRN_x2.pth",
    ("bsrn", 3): "BSRN/net_g_BSRN_x3.pth",
    ("bsrn", 4): "BSRN/net_g_BSRN_x4.pth",
    ("vapsr", 2): "VapSR/VapSR_X2.pth",
    ("vapsr", 3): "VapSR/VapSR_X3.pth",
    ("vapsr", 4): "VapSR/VapSR_X4.pth",
    ("vapsr-s", 4): "VapSR/VapSR-S.pth",
}

# Parameter counts of the published models = tensor counts of the official files (checked against the files
# themselves in test_strict_load_official). Papers round them: BSRN 332/340/352K, VapSR 342K, VapSR-S 155K.
PARAMS = {
    ("bsrn", 2): 331_628,
    ("bsrn", 3): 340_283,
    ("bsrn", 4): 352_400,
    ("vapsr", 2): 329_236,
    ("vapsr", 3): 336_811,
    ("vapsr", 4): 342_220,
    ("vapsr-s", 4): 154_956,
}
PAPER_PARAMS_K = {
    ("bsrn", 2): 332,
    ("bsrn", 3): 340,
    ("bsrn", 4): 352,
    ("vapsr", 4): 342,
    ("vapsr-s", 4): 155,
}

# Rows published.csv lacks: (name, scale, dataset) -> (PSNR, SSIM), Y channel.
EXTRA_PUBLISHED = {
    # VapSR paper (Zhou et al., ECCVW 2022, arXiv:2210.05960), quantitative-comparison table, "VapSR" rows at
    # x2 and x3 (not in any stored copy we could open; the B100 x2 figure of the same row, 32.27/0.9011, is
    # quoted in the EfficientViT README, and Set5 x2/x3 reproduce to 0.011 dB in test_vapsr_set5_gtmod12).
    ("vapsr", 2, "Set5"): (38.08, 0.9612),
    ("vapsr", 2, "Set14"): (33.77, 0.9195),
    ("vapsr", 3, "Set5"): (34.52, 0.9284),
    ("vapsr", 3, "Set14"): (30.53, 0.8452),
    # github:zhoumumu/VapSR README.md, 'Performance of X4 scale' table, row VapSR-S (155K params)
    ("vapsr-s", 4, "Set5"): (32.14, 0.8951),
    ("vapsr-s", 4, "Set14"): (28.64, 0.7826),
}

PSNR_TOL, SSIM_TOL = 0.02, 0.001

# VapSR's Set5 figures (paper and README, every scale) were made on Set5 cropped to a multiple of 12 (BasicSR
# GTmod12 + LRbicx4), not to a multiple of the scale as our basicsr protocol does. Under the protocol VapSR
# lands above them on Set5 (x2 +0.044, x3 +0.017, x4 +0.021, VapSR-S x4 +0.024 dB; Set14 exact);
# test_vapsr_set5_gtmod12 shows the mod-12 crop reproduces every one of them within tolerance.
SET5_MOD12 = {("vapsr", 2), ("vapsr", 3), ("vapsr", 4), ("vapsr-s", 4)}

# Misses we measured and could not explain; reported, not hidden (the test xfails only when these are the misses).
# VapSR x2 Set14: 33.746/0.9197 vs the paper's 33.77/0.9195 (-0.024 dB; a mod-12 crop gives 33.725, further off;
# BSRN x2 Set14 on the same images is exact, so the images and LR are BasicSR's).
KNOWN_MISSES = {("vapsr", 2, "Set14")}


# ----------------------------------------------------------------------------------------------- fast


def test_zoo_specs() -> None:
    b, v, vs = zoo.get_spec("bsrn"), zoo.get_spec("vapsr"), zoo.get_spec("vapsr-s")
    assert (b.scales, v.scales, vs.scales) == ((2, 3, 4), (2, 3, 4), (4,))
    assert b.checkpoint_keys[0] == "params"  # BSRN files hold only ``params``
    assert v.checkpoint_keys[0] == vs.checkpoint_keys[0] == "params_ema"  # the published VapSR weights
    assert b.checkpoints == {s: Path(OFFICIAL["bsrn", s]).name for s in (2, 3, 4)}
    assert v.checkpoints == {s: Path(OFFICIAL["vapsr", s]).name for s in (2, 3, 4)}
    assert vs.checkpoints == {4: "VapSR-S.pth"}
    assert (b.published_name, v.published_name) == ("BSRN", "VapSR")
    assert all(s.input_range == 1.0 and s.protocol == "basicsr" for s in (b, v, vs))
    with pytest.raises(ValueError):
        zoo.build("vapsr-s", 2)


@pytest.mark.parametrize(("name", "scale"), sorted(PARAMS))
def test_param_counts(name: str, scale: int) -> None:
    n = _n_params(zoo.build(name, scale))
    assert n == PARAMS[name, scale]
    if (name, scale) in PAPER_PARAMS_K:
        assert round(n / 1000) == PAPER_PARAMS_K[name, scale]


@pytest.mark.parametrize(("name", "scale"), sorted(PARAMS))
def test_output_shape(name: str, scale: int) -> None:
    model = zoo.build(name, scale).eval()
    # odd sizes; 17 px is about the smallest BSRN's ESA (stride-2 conv, then 7x7/3 max-pool) accepts
    x = torch.rand(1, 3, 17, 23)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()


def test_cca_matches_torch_std() -> None:
    # second implementation: contrast = population std over H, W (torch.std with correction=0)
    torch.manual_seed(0)
    cca = CCALayer(32).eval()
    x = torch.randn(2, 32, 9, 11)
    ref = x * cca.conv_du(x.std(dim=(2, 3), correction=0, keepdim=True) + x.mean(dim=(2, 3), keepdim=True))
    torch.testing.assert_close(cca(x), ref)


def test_vab_matches_functional_reference() -> None:
    # second implementation of one VapSR block with torch.nn.functional and nn.LayerNorm on channels-last
    torch.manual_seed(0)
    blk = VAB(8, 12).eval()
    for p in blk.parameters():  # non-trivial LN affine too
        nn.init.normal_(p, std=0.3)
    x = torch.randn(1, 8, 10, 13)
    a = blk.atten_branch
    h = F.gelu(F.conv2d(x, blk.proj_1.weight, blk.proj_1.bias))
    attn = F.conv2d(h, a.pointwise.weight, a.pointwise.bias)
    attn = F.conv2d(attn, a.depthwise.weight, a.depthwise.bias, padding=2, groups=12)
    attn = F.conv2d(
        attn, a.depthwise_dilated.weight, a.depthwise_dilated.bias, padding=6, dilation=3, groups=12
    )
    y = F.conv2d(h * attn, blk.proj_2.weight, blk.proj_2.bias) + x
    ln = nn.LayerNorm(8)  # torch default eps 1e-5, as the official code
    ln.weight.data.copy_(blk.pixel_norm.weight)
    ln.bias.data.copy_(blk.pixel_norm.bias)
    ref = ln(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(blk(x), ref)


def test_bsrn_structure() -> None:
    m = BSRN(upscale=4)
    assert m.fea_conv.pw.in_channels == 12  # the RGB input is stacked 4x
    assert [n for n, _ in m.named_children()][1:9] == [f"B{i}" for i in range(1, 9)]


def test_vapsr_configs() -> None:
    v2, v4 = zoo.build("vapsr", 2), zoo.build("vapsr", 4)
    vs = zoo.build("vapsr-s", 4)
    assert isinstance(v2, VapSR) and (len(v2.body), len(v4.body), len(vs.body)) == (20, 21, 11)
    assert vs.conv_body.groups == 2 and vs.conv_first.out_channels == 32


# ----------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.parametrize(("name", "scale"), sorted(OFFICIAL))
def test_strict_load_official(name: str, scale: int, weights_dir: Path) -> None:
    spec = zoo.get_spec(name)
    path = weights_dir / OFFICIAL[name, scale]
    model = load_into(spec.builder(scale), path, spec.checkpoint_keys)
    raw = read_checkpoint(path)
    expected_key = "params" if name == "bsrn" else "params_ema"
    sd = raw[expected_key]
    assert sum(v.numel() for v in sd.values()) == _n_params(model) == PARAMS[name, scale]
    own = model.state_dict()
    assert own.keys() == sd.keys()
    assert all(torch.equal(own[k], sd[k]) for k in sd)  # the EMA set for VapSR, not the training set


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "scale", "file", "bad_key"),
    [
        ("bsrn", 4, ("bsrn", 2), "upsampler.upsampleOneStep.0.weight"),
        ("bsrn", 2, ("bsrn", 3), "upsampler.upsampleOneStep.0.bias"),
        ("vapsr", 3, ("vapsr", 2), "upsampler.2.weight"),
        ("vapsr", 2, ("vapsr", 3), "upsampler.2.bias"),
    ],
)
def test_wrong_scale_names_misshaped_keys(
    name: str, scale: int, file: tuple[str, int], bad_key: str, weights_dir: Path
) -> None:
    model = zoo.build(name, scale)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as exc:
        load_into(model, weights_dir / OFFICIAL[file], zoo.get_spec(name).checkpoint_keys)
    msg = str(exc.value)
    assert "misshaped" in msg and bad_key in msg
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


@pytest.mark.slow
def test_wrong_vapsr_file_names_missing_and_misshaped(weights_dir: Path) -> None:
    # x4 file into an x2 model: block 20 (and upsampler.3) are extra, upsampler.0 differs in shape
    with pytest.raises(CheckpointMismatchError) as exc:
        load_into(zoo.build("vapsr", 2), weights_dir / OFFICIAL["vapsr", 4], ("params_ema",))
    msg = str(exc.value)
    assert "unexpected" in msg and "body.20." in msg
    assert "misshaped" in msg and "upsampler.0.weight" in msg
    # VapSR-S (32 ch) into VapSR x4 (48 ch)
    with pytest.raises(CheckpointMismatchError, match=r"misshaped.*conv_first\.weight"):
        load_into(zoo.build("vapsr", 4), weights_dir / OFFICIAL["vapsr-s", 4], ("params_ema",))


def _published(shared: Path, name: str, scale: int, dataset: str) -> tuple[float, float]:
    if (name, scale, dataset) in EXTRA_PUBLISHED:
        return EXTRA_PUBLISHED[name, scale, dataset]
    row_name = zoo.get_spec(name).published_name
    with open(shared / "reference" / "published.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["model"] == row_name and int(row["scale"]) == scale:
                col = dataset.lower()
                return float(row[f"{col}_psnr"]), float(row[f"{col}_ssim"])
    raise LookupError(f"no published row for {row_name} x{scale}")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "scale"), sorted(OFFICIAL))
def test_reproduces_published(
    name: str, scale: int, shared: Path, data_root: Path, weights_dir: Path
) -> None:
    from harness.evaluate import evaluate_model

    model = zoo.create(name, scale, checkpoint=weights_dir / OFFICIAL[name, scale])
    misses = []
    for dataset in ("Set5", "Set14"):
        r = evaluate_model(model, dataset, scale, data_root, protocol="basicsr")
        assert r.n_images == {"Set5": 5, "Set14": 14}[dataset]
        p, s = _published(shared, name, scale, dataset)
        if dataset == "Set5" and (name, scale) in SET5_MOD12:
            # known: the authors' Set5 is mod-12 cropped (see SET5_MOD12); our protocol lands a little above
            assert 0.0 < r.psnr - p < 0.05 and abs(r.ssim - s) <= SSIM_TOL, (dataset, r.psnr, r.ssim, p, s)
            continue
        if abs(r.psnr - p) > PSNR_TOL or abs(r.ssim - s) > SSIM_TOL:
            # a known miss stays known only while it stays small
            known = (
                (name, scale, dataset) in KNOWN_MISSES
                and abs(r.psnr - p) < 0.05
                and abs(r.ssim - s) < SSIM_TOL
            )
            misses.append((known, f"{dataset}: {r.psnr:.4f}/{r.ssim:.5f} vs published {p}/{s}"))
    text = f"{name} x{scale}: " + "; ".join(m for _, m in misses)
    if misses and all(known for known, _ in misses):
        pytest.xfail("known, unexplained miss - " + text)
    assert not misses, text


@pytest.mark.slow
@pytest.mark.parametrize(("name", "scale"), sorted(SET5_MOD12))
def test_vapsr_set5_gtmod12(name: str, scale: int, shared: Path, data_root: Path, weights_dir: Path) -> None:
    """VapSR's published Set5 figures come back when HR is cropped to a multiple of 12 (BasicSR GTmod12) and
    LR made from that: the gap under our protocol is the authors' test data, not architecture or weights."""
    from harness.data import find_hr_dir, list_images, make_lr, modcrop, read_image
    from harness.evaluate import super_resolve
    from harness.metrics import psnr_ssim

    spec = zoo.get_spec(name)
    model = load_into(spec.builder(scale), weights_dir / OFFICIAL[name, scale], spec.checkpoint_keys).eval()
    scores = []
    for path in list_images(find_hr_dir(data_root, "Set5")):
        hr = modcrop(read_image(path), 12)  # 12 is a multiple of 2, 3 and 4: the same crop at every scale
        scores.append(psnr_ssim(super_resolve(model, make_lr(hr, scale), scale), hr, scale, "basicsr"))
    p, s = np.mean(scores, axis=0)
    pub_p, pub_s = _published(shared, name, scale, "Set5")
    assert abs(p - pub_p) <= PSNR_TOL and abs(s - pub_s) <= SSIM_TOL, (p, s, pub_p, pub_s)
