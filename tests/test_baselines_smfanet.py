"""SMFANet / SMFANet+: strict loading of every official checkpoint, parameter counts, and the published
Set5 / Set14 PSNR / SSIM reproduced with the official weights under the basicsr protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import published_row as _published

from baselines.smfanet import PCFN, SMFANet, smfanet, smfanet_plus
from harness import zoo
from harness.checkpoint import CheckpointMismatchError, load_into, read_checkpoint, unwrap_state_dict
from harness.measure import count_params as _n_params

# (zoo name, builder, published row, official file pattern)
MODELS = {
    "smfanet": (smfanet, "SMFANet", "SMFANet_DF2K_100w_x{}SR.pth"),
    "smfanet-plus": (smfanet_plus, "SMFANet+", "SMFANet_plus_DF2K_100w_x{}SR.pth"),
}
# parameter counts of the official x2/x3/x4 files (sum of numel over their 'params' tensors)
OFFICIAL_PARAMS = {
    "smfanet": {2: 185_628, 3: 190_503, 4: 197_328},
    "smfanet-plus": {2: 480_300, 3: 486_795, 4: 495_888},
}
CASES = [(name, s) for name in MODELS for s in (2, 3, 4)]


@pytest.mark.parametrize("name", list(MODELS))
def test_zoo_registration(name: str) -> None:
    spec = zoo.get_spec(name)
    builder, row, pattern = MODELS[name]
    assert spec.published_name == row
    assert spec.whole_image  # global variance / pooling: tiling would change the output
    assert dict(spec.checkpoints) == {s: pattern.format(s) for s in (2, 3, 4)}
    for s in (2, 3, 4):
        m = zoo.build(name, s)
        assert _n_params(m) == OFFICIAL_PARAMS[name][s]
        assert m(torch.rand(1, 3, 16, 24)).shape == (1, 3, 16 * s, 24 * s)


def test_pcfn_partial_conv_equals_official_inplace_form() -> None:
    # the official eval path overwrites the first p_dim hidden channels in place; ours splits and concatenates
    torch.manual_seed(0)
    m = PCFN(36, 2.0).eval()
    x = torch.randn(2, 36, 9, 11)
    with torch.no_grad():
        h = m.act(m.conv_0(x))
        h[:, : m.p_dim] = m.act(m.conv_1(h[:, : m.p_dim]))
        ref = m.conv_2(h)
        torch.testing.assert_close(m(x), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name,scale", CASES)
def test_params_match_published(name: str, scale: int, shared: Path) -> None:
    builder, row, _ = MODELS[name]
    published_k = float(_published(shared, row, scale)["params_k"])
    assert _n_params(builder(scale)) / 1000 == pytest.approx(published_k, rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name,scale", CASES)
def test_official_checkpoint_loads_strictly(name: str, scale: int, weights_dir: Path) -> None:
    builder, _, pattern = MODELS[name]
    path = weights_dir / "SMFANet" / pattern.format(scale)
    sd = unwrap_state_dict(read_checkpoint(path), ("params",))
    model = load_into(builder(scale), path, zoo.get_spec(name).checkpoint_keys)
    assert _n_params(model) == sum(v.numel() for v in sd.values()) == OFFICIAL_PARAMS[name][scale]
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k


@pytest.mark.slow
def test_wrong_scale_checkpoint_names_misshaped_keys(weights_dir: Path) -> None:
    with pytest.raises(CheckpointMismatchError) as e:
        load_into(smfanet(4), weights_dir / "SMFANet" / "SMFANet_DF2K_100w_x2SR.pth", ("params",))
    msg = str(e.value)
    assert "misshaped" in msg and "to_img.0.weight" in msg and "to_img.0.bias" in msg
    # and a SMFANet+ file does not fit SMFANet at all (48 vs 36 channels, 12 vs 8 blocks)
    with pytest.raises(CheckpointMismatchError, match="unexpected"):
        load_into(SMFANet(upscaling_factor=4), weights_dir / "SMFANet" / "SMFANet_plus_DF2K_100w_x4SR.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name,scale", CASES)
def test_reproduces_published_psnr_ssim(
    name: str, scale: int, shared: Path, weights_dir: Path, data_root: Path
) -> None:
    from harness.evaluate import evaluate_model

    builder, row, pattern = MODELS[name]
    spec = zoo.get_spec(name)
    model = load_into(builder(scale), weights_dir / "SMFANet" / pattern.format(scale), spec.checkpoint_keys)
    pub = _published(shared, row, scale)
    for ds in ("Set5", "Set14"):
        r = evaluate_model(model, ds, scale, data_root=data_root, protocol=spec.protocol)
        assert r.n_images == {"Set5": 5, "Set14": 14}[ds]
        want_psnr, want_ssim = float(pub[f"{ds.lower()}_psnr"]), float(pub[f"{ds.lower()}_ssim"])
        assert abs(r.psnr - want_psnr) <= 0.02, (
            f"{row} x{scale} {ds}: PSNR {r.psnr:.4f} vs published {want_psnr}"
        )
        assert abs(r.ssim - want_ssim) <= 0.001, (
            f"{row} x{scale} {ds}: SSIM {r.ssim:.5f} vs published {want_ssim}"
        )
