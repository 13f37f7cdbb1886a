"""SAFMN (paper model and NTIRE 2023 entry) and ShuffleMixer.

Truths: spandrel's SAFMN (a second, independent implementation) with identical weights; the official
team15_SAFMN.pth checkpoint; published parameter counts; for ShuffleMixer (absent from spandrel) a functional
re-derivation of the official forward pass written here from the official code's semantics.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import published_row as _published

from baselines.safmn import SAFMN, SAFMNNTIRE, safmn, safmn_config, safmn_ntire
from baselines.shufflemixer import shufflemixer
from harness import zoo
from harness.checkpoint import CheckpointMismatchError, load_into, read_checkpoint, unwrap_state_dict
from harness.measure import count_params as _n_params

SCALES = (2, 3, 4)


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Perturb every parameter (norm weights/biases too) so no default init hides a naming or wiring bug."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


# ---------------------------------------------------------------- SAFMN


@pytest.mark.parametrize("scale", SCALES)
def test_safmn_equals_spandrel(scale: int) -> None:
    from spandrel import ModelLoader
    from spandrel.architectures.SAFMN import SAFMN as SpandrelSAFMN

    ours = _randomize(safmn(scale), seed=scale).eval()
    # spandrel detects the architecture and reads the configuration from our state dict
    desc = ModelLoader().load_from_state_dict(ours.state_dict())
    assert desc.architecture.id == "SAFMN" and desc.scale == scale
    theirs = desc.model.eval()
    assert isinstance(theirs, SpandrelSAFMN)
    # float64: the perturbed weights give outputs of ~10, where float32 rounding alone reaches ~1e-5
    ours, theirs = ours.double(), theirs.double()
    x = torch.rand(
        2, 3, 29, 23, generator=torch.Generator().manual_seed(7), dtype=torch.float64
    )  # uneven pooling
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert a.shape == (2, 3, 29 * scale, 23 * scale)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_params_match_published(scale: int, shared: Path) -> None:
    for name, row in (("safmn", "SAFMN"), ("shufflemixer", "ShuffleMixer")):
        published_k = float(_published(shared, row, scale)["params_k"])
        assert zoo.get_spec(name).published_name == row
        assert _n_params(zoo.build(name, scale)) / 1000 == pytest.approx(published_k, rel=0.01), (name, scale)


def test_safmn_config_reads_state_dict() -> None:
    for dim, n_blocks, ffn, s in ((36, 8, 2.0, 2), (24, 3, 1.5, 3), (36, 8, 2.0, 4)):
        sd = SAFMNNTIRE(dim, n_blocks, ffn, s).state_dict()
        assert safmn_config(sd) == {"dim": dim, "n_blocks": n_blocks, "ffn_scale": ffn, "upscaling_factor": s}


@pytest.mark.slow
def test_ntire_checkpoint_loads_and_super_resolves(shared: Path, weights_dir: Path, data_root: Path) -> None:
    from harness.evaluate import evaluate_model

    path = weights_dir / "SAFMN" / "team15_SAFMN.pth"
    spec = zoo.get_spec("safmn-ntire")
    sd = unwrap_state_dict(read_checkpoint(path), spec.checkpoint_keys)
    cfg = safmn_config(sd)
    assert cfg == {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0, "upscaling_factor": 4}
    model = load_into(SAFMNNTIRE(**cfg), path, spec.checkpoint_keys)
    assert _n_params(model) == sum(v.numel() for v in sd.values())
    # the zoo's build is the same configuration
    assert {k: v.shape for k, v in zoo.build("safmn-ntire", 4).state_dict().items()} == {
        k: v.shape for k, v in sd.items()
    }
    r = evaluate_model(model, "Set5", 4, data_root=data_root, protocol=spec.protocol)
    bicubic = float(_published(shared, "Bicubic", 4)["set5_psnr"])
    assert r.n_images == 5 and math.isfinite(r.psnr)
    assert r.psnr > bicubic + 3.0, f"team15 SAFMN Set5 x4 PSNR {r.psnr:.3f} not well above bicubic {bicubic}"


@pytest.mark.slow
def test_wrong_checkpoints_raise_with_key_names(weights_dir: Path) -> None:
    path = weights_dir / "SAFMN" / "team15_SAFMN.pth"
    with pytest.raises(CheckpointMismatchError) as e:  # x4 file, x2 model
        load_into(safmn_ntire(2), path, ("params",))
    assert "misshaped" in str(e.value) and "to_img.0.weight" in str(e.value)
    with pytest.raises(CheckpointMismatchError) as e:  # challenge file, paper architecture
        load_into(SAFMN(36, 8, 2.0, 4), path, ("params",))
    assert "norm.gamma" in str(e.value) and "feats.0.norm1.weight" in str(e.value)


def test_safmn_wrong_scale_names_misshaped_keys(tmp_path: Path) -> None:
    f = tmp_path / "safmn_x3.pth"
    torch.save({"params": safmn(3).state_dict()}, f)
    with pytest.raises(CheckpointMismatchError) as e:
        load_into(safmn(4), f)
    msg = str(e.value)
    assert (
        "2 misshaped" in msg and "to_img.0.weight: checkpoint (27, 36, 3, 3) vs model (48, 36, 3, 3)" in msg
    )
    assert "to_img.0.bias" in msg


# ---------------------------------------------------------------- ShuffleMixer


def _ref_layernorm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    # official BiasFree_LayerNorm on 'b (h w) c': population variance over channels, eps 1e-5, no bias
    mu = x.mean(1, keepdim=True)
    var = ((x - mu) ** 2).mean(1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * w[None, :, None, None]


def _ref_split_mlp(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    a = F.conv2d(
        F.silu(F.conv2d(a, sd[p + "fc.0.weight"], sd[p + "fc.0.bias"])),
        sd[p + "fc.2.weight"],
        sd[p + "fc.2.bias"],
    )
    y = torch.cat([a, b], dim=1)
    n, c, h, w = y.shape
    # einops 'b (g d) h w -> b (d g) h w' with g=8, written as index arithmetic: out[d*8+g] = in[g*D+d]
    d = c // 8
    idx = torch.tensor([(j % 8) * d + j // 8 for j in range(c)])
    return y[:, idx]


def _ref_shufflemixer(sd: dict, x: torch.Tensor, scale: int, n_blocks: int = 5, k: int = 7) -> torch.Tensor:
    h = F.conv2d(x, sd["to_feat.weight"], padding=1)
    c = h.shape[1]
    for i in range(n_blocks):
        blk = f"blocks.{i}."
        skip = h
        for j in range(2):
            p = f"{blk}net.{j}."
            h = _ref_split_mlp(_ref_layernorm(h, sd[p + "norm1.body.weight"]), sd, p + "mlp1.") + h
            h = F.conv2d(h, sd[p + "spatial.weight"], sd[p + "spatial.bias"], padding=k // 2, groups=c)
            h = _ref_split_mlp(_ref_layernorm(h, sd[p + "norm2.body.weight"]), sd, p + "mlp2.") + h
        h = h + skip
        t = F.silu(F.conv2d(h, sd[blk + "conv.0.weight"], sd[blk + "conv.0.bias"], padding=1))
        h = F.conv2d(t, sd[blk + "conv.2.weight"], sd[blk + "conv.2.bias"]) + h
    convs = ("upsapling.0.", "upsapling.3.") if scale == 4 else ("upsapling.0.",)
    for p in convs:
        h = F.silu(F.pixel_shuffle(F.conv2d(h, sd[p + "weight"], sd[p + "bias"]), 2 if scale == 4 else scale))
    out = F.conv2d(h, sd["tail.weight"], sd["tail.bias"], padding=1)
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", SCALES)
def test_shufflemixer_equals_functional_reference(scale: int) -> None:
    model = _randomize(shufflemixer(scale), seed=10 + scale).eval().double()  # float64: see the SAFMN test
    x = torch.rand(1, 3, 12, 15, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
        ref = _ref_shufflemixer(model.state_dict(), x, scale)
    assert out.shape == (1, 3, 12 * scale, 15 * scale)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_shufflemixer_wrong_scale_names_keys(tmp_path: Path) -> None:
    f = tmp_path / "shufflemixer_x3.pth"
    torch.save({"params_ema": shufflemixer(3).state_dict()}, f)
    with pytest.raises(CheckpointMismatchError) as e:
        load_into(shufflemixer(4), f)
    msg = str(e.value)
    assert "upsapling.0.weight: checkpoint (576, 64, 1, 1) vs model (256, 64, 1, 1)" in msg
    assert "missing" in msg and "upsapling.3.weight" in msg
