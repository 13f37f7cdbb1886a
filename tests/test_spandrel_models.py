"""Architectures outside the zoo through spandrel: random-init checkpoints of SwinIR, SPAN, Compact and SAFMN
(spandrel's own classes, saved to files) evaluate through `eval --checkpoint` with the same SR output as
spandrel's own model object (its padding included: SwinIR needs >= 16 px, SAFMN multiples of 8, here on an
odd-sized image); they are stored as spandrel:<ArchId> with spandrel's version, profiled through our
counters, and shown in Table 3 and Fig. 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

spandrel = pytest.importorskip("spandrel")

from harness import zoo  # noqa: E402
from harness.cli import app  # noqa: E402
from harness.evaluate import evaluate_model  # noqa: E402
from harness.store import Store  # noqa: E402

runner = CliRunner()


def _nets() -> dict[str, nn.Module]:
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    return {  # small configurations: spandrel reads each back off its shapes
        "SwinIR": lambda: SwinIR(upscale=4, in_chans=3, img_size=32, window_size=8, img_range=1.0, depths=[2],
                                 embed_dim=24, num_heads=[2], mlp_ratio=2, upsampler="pixelshuffledirect"),
        "SPAN": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=32, upscale=4),  # the zoo has 48/52 ch
        "Compact": lambda: Compact(num_feat=16, num_conv=4, upscale=4),
        "SAFMN": lambda: SAFMN(dim=24, n_blocks=2, ffn_scale=2.0, upscaling_factor=4),  # the zoo's has 36 ch
    }  # fmt: skip


ARCHS = list(_nets())


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("spandrel")
    files = {}
    for i, (arch, make) in enumerate(_nets().items()):
        torch.manual_seed(i)
        net = make()
        with torch.no_grad():  # random init that is not near-identity, so outputs differ by architecture
            for p in net.parameters():
                p.add_(0.02 * torch.randn_like(p))
        files[arch] = out / f"{arch.lower()}_random.pth"
        torch.save({"params_ema": net.state_dict()} if i % 2 else net.state_dict(), files[arch])
    return files


@pytest.fixture(scope="module")
def odd_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Set5 of two odd-sized images: LR 13x11 and 9x15 at x4 (below SwinIR's 16 px, not multiples of 8)."""
    root = tmp_path_factory.mktemp("data")
    hr = root / "benchmark" / "Set5" / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(((52, 44), (36, 60))):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(hr / f"img{i}.png")
    return root


class _SpandrelOwn(nn.Module):
    """spandrel's own descriptor call (its padding, clamp and crop) as a module evaluate_model can run."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.desc = spandrel.ModelLoader().load_from_file(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.desc(x)


@pytest.mark.parametrize("arch", ARCHS)
def test_same_output_as_spandrels_own_model(arch: str, checkpoints: dict[str, Path]) -> None:
    ours = zoo.create(None, None, checkpoints[arch]).eval()
    assert zoo.zoo_info(ours).name == f"spandrel:{arch}" and zoo.zoo_info(ours).family == "spandrel"
    own = _SpandrelOwn(checkpoints[arch])
    x = torch.rand(1, 3, 13, 11, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a, b = ours(x).clamp(0, 1), own(x)
    assert a.shape == b.shape == (1, 3, 52, 44)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert a.std() > 1e-3  # not a constant image


def test_padding_is_what_the_size_requirements_ask() -> None:
    from harness.foreign import SpandrelNet

    class Desc:  # the attributes SpandrelNet reads off a descriptor
        model = nn.Identity()
        architecture = type("A", (), {"id": "X", "name": "X"})()
        scale = 1
        size_requirements = spandrel.SizeRequirements(minimum=16, multiple_of=8)

    net = SpandrelNet(Desc())
    assert net.padding(13, 11) == (3, 5) and net.padding(16, 24) == (0, 0) and net.padding(17, 3) == (7, 13)
    x = torch.arange(13 * 11, dtype=torch.float32).reshape(1, 1, 13, 11)
    torch.testing.assert_close(net(x), x)  # padded, run, cropped back to the input


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_checkpoint_without_model(
    arch: str, checkpoints: dict[str, Path], odd_set: Path, tmp_path: Path
) -> None:
    store = tmp_path / "r.db"
    res = runner.invoke(app, ["eval", "--checkpoint", str(checkpoints[arch]), "-d", "Set5", "--data-root",
                              str(odd_set), "--store", str(store)])  # fmt: skip
    assert res.exit_code == 0, res.output
    (row,) = Store(store).rows()
    assert row["model"] == f"spandrel:{arch}" and row["scale"] == 4 and row["n_images"] == 2
    assert row["versions"]["spandrel"] == spandrel.__version__ and row["extra"]["family"] == "spandrel"
    want = evaluate_model(_SpandrelOwn(checkpoints[arch]), "Set5", 4, odd_set, "basicsr", "cpu")
    assert (row["psnr"], row["ssim"]) == (want.psnr, want.ssim)


def test_model_spandrel_forces_spandrel_for_a_zoo_architecture(tmp_path: Path, odd_set: Path) -> None:
    path = tmp_path / "span52.pth"
    torch.save(zoo.build("span", 4).state_dict(), path)  # the zoo's SPAN: detected as span by default
    assert zoo.zoo_info(zoo.create(None, None, path)).name == "span"
    store = tmp_path / "r.db"
    res = runner.invoke(app, ["eval", "--model", "spandrel", "--checkpoint", str(path), "-d", "Set5",
                              "--data-root", str(odd_set), "--store", str(store)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert [r["model"] for r in Store(store).rows()] == ["spandrel:SPAN"]


def test_profile_and_report_treat_spandrel_models_like_zoo_models(
    checkpoints: dict[str, Path], odd_set: Path, tmp_path: Path
) -> None:
    from reports.inputs import load_report

    store, ckpt = tmp_path / "r.db", checkpoints["Compact"]
    for cmd in (
        ["eval", "-d", "Set5", "--data-root", str(odd_set)],
        ["profile", "--no-latency", "--no-thop"],
    ):
        res = runner.invoke(app, [*cmd, "--checkpoint", str(ckpt), "--store", str(store)])
        assert res.exit_code == 0, res.output
    prof = next(r for r in Store(store).rows() if r["kind"] == "profile")
    net = spandrel.ModelLoader().load_from_file(ckpt).model
    assert prof["model"] == "spandrel:Compact" and prof["metrics"]["params"] == sum(
        p.numel() for p in net.parameters()
    )
    # Compact x4 at 180x320: 4 convs of 16->16 3x3 + first 3->16 + last 16->48 (multiply-adds; PReLU uncounted)
    hw = 180 * 320
    assert prof["metrics"]["flops_paper"] == hw * 9 * (3 * 16 + 4 * 16 * 16 + 16 * 48)
    rep = load_report(store, "Set5", 4)
    t3 = rep.tables[2].values.droplevel("block")
    psnr = next(r["psnr"] for r in Store(store).rows() if r["kind"] == "eval")
    assert t3.loc["spandrel:Compact", ("Set5", "PSNR")] == pytest.approx(psnr, abs=5e-3)
    assert "spandrel:Compact" in set(rep.figure["label"])
