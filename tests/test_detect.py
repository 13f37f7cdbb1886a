"""Detection from weights: every zoo model at every scale round-trips through a saved random-init state dict;
every official checkpoint in ../shared/weights is detected as its model and scale with no name given and
evaluates to the same PSNR as the named evaluation; ambiguous / unknown / broken files are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness import zoo
from harness.checkpoint import unwrap_report
from harness.errors import (
    AmbiguousCheckpointError,
    CheckpointMismatchError,
    UnknownArchitectureError,
    UsageError,
)
from lmfn.variants import canonical_name

# containers the round trip cycles through (BasicSR, DataParallel, GAN trainers, plain)
CONTAINERS = ("flat", "params_ema", "module", "netG", "state_dict")


def _zoo_cases() -> list[tuple[str, int]]:
    return [(n, s) for n, spec in zoo.registry().items() if spec.family != "bicubic" for s in spec.scales]


def _save(sd: dict, path: Path, container: str) -> Path:
    if container == "module":
        obj = {f"module.{k}": v for k, v in sd.items()}
    elif container == "netG":
        obj = {"net": {f"netG.{k}": v for k, v in sd.items()}}  # a wrapper key and a prefix
    elif container == "flat":
        obj = sd
    else:
        obj = {container: sd, "iter": 7}
    torch.save(obj, path)
    return path


def _same_network(detected: str, name: str) -> bool:
    """``lkdn`` and the ``lka`` pattern are one network registered twice (the zoo says so)."""

    def key(n: str) -> str:
        try:
            return canonical_name(n)
        except ValueError:
            return n

    return key(detected) == key(name)


@pytest.mark.parametrize("name,scale", _zoo_cases())
def test_random_init_round_trip(name: str, scale: int, tmp_path: Path) -> None:
    torch.manual_seed(scale)
    sd = zoo.build(name, scale).state_dict()
    i = sum(map(ord, name + str(scale))) % len(CONTAINERS)
    path = _save(sd, tmp_path / "weights.bin", CONTAINERS[i])  # no scale or name in the file name
    hint = None
    if name == "pan" and scale in (2, 3):  # x2 and x3 share every shape: the scale must come from elsewhere
        with pytest.raises(AmbiguousCheckpointError, match=r"pan x2, pan x3 .*--scale"):
            zoo.detect(path)
        hint = scale
    found = zoo.detect(path, hint)
    assert _same_network(found.name, name) and found.scale == scale
    model = zoo.create(None, hint, path)  # the detected network holds exactly the saved tensors
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_lmfn_configuration_is_read_off_the_block_keys(tmp_path: Path) -> None:
    for name, cells, iff in (("lka-msm-ifm@parallel", "lka-msm-ifm", "parallel"), ("msm", "msm", None),
                             ("ifm@mr-cross", "ifm", "mr-cross"), ("lka-ifm@cascade", "lka-ifm", "cascade")):  # fmt: skip
        path = _save(zoo.build(name, 3).state_dict(), tmp_path / f"{cells}.pth", "params_ema")
        found = zoo.detect(path)
        assert found.config["cells"] == cells and found.config.get("iff") == iff
        assert found.config["channels"] == 56 and found.config["blocks"] == 8 and found.scale == 3
        assert found.unwrapped == ("params_ema",)


def test_unwrap_report_names_the_steps() -> None:
    sd = {"a.weight": torch.zeros(1)}
    assert unwrap_report({"params": {"module.a.weight": torch.zeros(1)}})[1] == ["params", "prefix module."]
    assert unwrap_report({"only": {"netG.a.weight": torch.zeros(1)}})[1] == ["only", "prefix netG."]
    assert unwrap_report(sd)[1] == []


def test_scale_hint_that_disagrees_is_an_error(tmp_path: Path) -> None:
    path = _save(zoo.build("bsrn", 2).state_dict(), tmp_path / "b.pth", "params")
    with pytest.raises(UsageError, match="bsrn x2, not x4"):
        zoo.detect(path, 4)


def test_unknown_and_lookalike_architectures(tmp_path: Path) -> None:
    torch.save({"encoder.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}, tmp_path / "u.pth")
    with pytest.raises(UnknownArchitectureError, match="unknown architecture.*encoder.weight"):
        zoo.detect(tmp_path / "u.pth")
    # BSRN's keys with one block too few: claimed by the BSRN detector, fitted by no zoo entry
    sd = {k: v for k, v in zoo.build("bsrn", 4).state_dict().items() if not k.startswith("B8.")}
    torch.save(sd, tmp_path / "b7.pth")
    with pytest.raises(UnknownArchitectureError, match="looks like BSRN but no zoo configuration fits"):
        zoo.detect(tmp_path / "b7.pth")


def test_a_pickle_that_runs_code_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"params": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointMismatchError, match="cannot read checkpoint"):
        zoo.detect(tmp_path / "evil.pth")
    assert not marker.exists()


# ---------------------------------------------------------------- official checkpoints (../shared/weights)

OFFICIAL = {  # file -> (model, scale): what the zoo names them (the zoo's own `checkpoints` patterns)
    f: (n, s) for n, spec in zoo.registry().items() for s, f in spec.checkpoints.items()
}


def _official_files(weights_dir: Path) -> list[Path]:
    return sorted(p for p in weights_dir.rglob("*.pth") if p.name in OFFICIAL)


@pytest.mark.slow
def test_every_official_checkpoint_is_detected(weights_dir: Path) -> None:
    files = _official_files(weights_dir)
    assert len(files) >= 27  # every file in ../shared/weights the zoo knows
    for path in files:
        found = zoo.detect(path)
        assert (found.name, found.scale) == OFFICIAL[path.name], path.name


@pytest.mark.slow
def test_detected_evaluation_equals_the_named_one(weights_dir: Path, data_root: Path) -> None:
    """Set5 PSNR/SSIM of every official file with no name given == with its zoo name (NGswin x3 left to the
    NGswin check below: it alone takes minutes on CPU)."""
    from harness.evaluate import evaluate_model

    for path in _official_files(weights_dir):
        name, scale = OFFICIAL[path.name]
        if name == "ngswin":
            continue
        named = evaluate_model(
            zoo.create(name, scale, path).eval(), "Set5", scale, data_root, "basicsr", "cpu"
        )
        found = evaluate_model(
            zoo.create(None, None, path).eval(), "Set5", scale, data_root, "basicsr", "cpu"
        )
        assert (found.psnr, found.ssim) == (named.psnr, named.ssim), path.name


def test_scale_token_in_the_file_name_decides_what_the_shapes_leave_open(tmp_path: Path) -> None:
    path = _save(zoo.build("pan", 3).state_dict(), tmp_path / "PANx3_mine.pth", "flat")
    found = zoo.detect(path)
    assert (found.name, found.scale) == ("pan", 3) and "x3 in the file name" in found.deciding


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 3])
def test_ngswin_official_weights_reproduce_the_published_rows(
    scale: int, weights_dir: Path, data_root: Path, shared: Path
) -> None:
    """The official NGswin files (strict load: the recomputed buffers are non-persistent) on Set5. The published
    row is a THIRD-PARTY quote (SMFANet's Table 2, read off a figure; see published.csv), so 0.02 dB / 0.001."""
    from helpers import published_row

    from harness.evaluate import evaluate_model

    path = weights_dir / "NGswin" / f"NGswin_x{scale}.pth"
    model = zoo.create(None, None, path).eval()  # detected, no name given
    assert (zoo.zoo_info(model).name, zoo.zoo_info(model).scale) == ("ngswin", scale)
    res = evaluate_model(model, "Set5", scale, data_root, "basicsr", "cpu")
    row = published_row(shared, "NGswin", scale)
    assert "THIRD-PARTY" in row["source"]
    # measured here on CPU: x2 38.061 / 0.9611 (published 38.05 / 0.9610), x3 34.514 / 0.9283 (34.52 / 0.9282)
    assert res.psnr == pytest.approx(float(row["set5_psnr"]), abs=0.02)
    assert res.ssim == pytest.approx(float(row["set5_ssim"]), abs=1e-3)


def test_train_init_without_model_trains_the_detected_network(tmp_path: Path) -> None:
    from harness.train.config import layered_config

    path = _save(zoo.build("lkdn", 2).state_dict(), tmp_path / "w.pth", "params")
    cfg = layered_config({"init": str(path), "profile": "smoke"}, {}, {})
    assert (cfg.model, cfg.scale, cfg.distill_teacher) == ("lkdn", 2, None)
    # the teacher of --init-distill defaults to the network the --init weights hold; --model stays the student
    cfg = layered_config(
        {"init": str(path), "profile": "smoke", "model": "lka-msm-ifm", "init_distill": 2}, {}, {}
    )
    assert (cfg.model, cfg.scale, cfg.distill_teacher) == ("lka-msm-ifm", 2, "lkdn")
