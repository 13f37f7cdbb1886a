"""Bad input: one-line error naming the problem, non-zero exit, no traceback, nothing written to the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store

runner = CliRunner()


def _make_set(root: Path, name: str = "Set5", n: int = 2, size: tuple[int, int] = (40, 36)) -> Path:
    hr = root / "benchmark" / name / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(hr / f"img{i}.png")
    return hr


def _run(args: list[str], store: Path):
    res = runner.invoke(app, [*args, "--store", str(store)])
    return res


def _assert_clean_failure(res, store: Path, *needles: str) -> None:
    text = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code != 0
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in text
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    for n in needles:
        assert n in text, text
    assert not store.exists() or Store(store).rows() == []


def test_corrupt_png(tmp_path: Path) -> None:
    hr = _make_set(tmp_path / "data")
    (hr / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Set5", "--data-root", str(tmp_path / "data")], store)
    _assert_clean_failure(res, store, "broken.png")


def test_empty_hr_folder(tmp_path: Path) -> None:
    (tmp_path / "data" / "benchmark" / "Set5" / "HR").mkdir(parents=True)
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Set5", "--data-root", str(tmp_path / "data")], store)
    _assert_clean_failure(res, store, "no images", "HR")


def test_missing_hr_folder(tmp_path: Path) -> None:
    _make_set(tmp_path / "data", "Set14")
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Set5", "--data-root", str(tmp_path / "data")], store)
    _assert_clean_failure(res, store, "Set5", "not found")


def test_missing_data_root(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Set5", "--data-root", str(tmp_path / "nowhere")], store)
    _assert_clean_failure(res, store, "nowhere")


def test_unknown_dataset(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Set99"], store)
    _assert_clean_failure(res, store, "Set99", "Set14")


def test_unknown_model(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "no-such-net", "-d", "Default"], store)
    _assert_clean_failure(res, store, "no-such-net", "bicubic")


@pytest.mark.parametrize("scale", ["5", "1", "0"])
def test_scale_outside_234(tmp_path: Path, scale: str) -> None:
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Default", "--scale", scale], store)
    _assert_clean_failure(res, store, scale, "2, 3, 4")


def test_unknown_protocol(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    res = _run(["eval", "--model", "bicubic", "-d", "Default", "--protocol", "psnr-rgb"], store)
    _assert_clean_failure(res, store, "psnr-rgb")


def test_good_run_writes_a_row_and_json(tmp_path: Path) -> None:
    _make_set(tmp_path / "data")
    store = tmp_path / "r.db"
    res = runner.invoke(
        app,
        [
            "eval",
            "-m",
            "bicubic",
            "-d",
            "Set5",
            "-s",
            "2",
            "--data-root",
            str(tmp_path / "data"),
            "--store",
            str(store),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    import json

    obj = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("model", "scale", "dataset", "protocol", "psnr", "ssim", "n_images"):
        assert key in obj
    assert obj["n_images"] == 2 and obj["scale"] == 2 and obj["protocol"] == "basicsr"
    rows = Store(store).rows()
    assert len(rows) == 1 and rows[0]["psnr"] == pytest.approx(obj["psnr"])
    assert rows[0]["code_rev"] and rows[0]["device"] and rows[0]["versions"]["torch"]


def test_lr_cache_never_inside_data_root(tmp_path: Path) -> None:
    hr = _make_set(tmp_path / "data")
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*"))
    res = runner.invoke(
        app,
        [
            "eval",
            "-m",
            "bicubic",
            "-d",
            "Set5",
            "--data-root",
            str(tmp_path / "data"),
            "--store",
            str(tmp_path / "r.db"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "data").rglob("*")) == before
    assert hr.exists()


def test_help_explains_commands() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("models", "eval", "train", "profile", "report"):
        assert cmd in res.output
    res = runner.invoke(app, ["eval", "--help"])
    assert "--data-root" in res.output and "--protocol" in res.output


def test_default_set_without_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMFN_BENCH_DATA", raising=False)
    res = runner.invoke(app, ["eval", "-m", "bicubic", "--store", str(tmp_path / "r.db"), "--json"])
    assert res.exit_code == 0, res.output
    rows = Store(tmp_path / "r.db").rows()
    assert [r["dataset"] for r in rows] == ["Default"] and rows[0]["n_images"] == 5
    assert 20 < rows[0]["psnr"] < 40


def test_ready_made_lr_folders_are_used(tmp_path: Path) -> None:
    # an EDSR-style LR_bicubic/X2 folder with deliberately different pixels must be the one evaluated
    from harness.data import benchmark_pairs

    hr = _make_set(tmp_path / "data", n=1, size=(40, 36))
    lr_dir = hr.parent / "LR_bicubic" / "X2"
    lr_dir.mkdir(parents=True)
    Image.fromarray(np.full((20, 18, 3), 7, np.uint8)).save(lr_dir / "img0x2.png")
    pair = benchmark_pairs("Set5", 2, tmp_path / "data")[0]
    assert (pair.lr == 7).all()
    shutil.rmtree(lr_dir.parent)
    basicsr_dir = hr.parent / "LRbicx2"
    basicsr_dir.mkdir()
    Image.fromarray(np.full((20, 18, 3), 9, np.uint8)).save(basicsr_dir / "img0.png")
    assert (benchmark_pairs("Set5", 2, tmp_path / "data")[0].lr == 9).all()


def test_profile_writes_row_and_skips_when_measured(tmp_path: Path) -> None:
    import json

    store = tmp_path / "r.db"
    args = [
        "profile",
        "-m",
        "lkdn",
        "-s",
        "4",
        "--latency-size",
        "16x16",
        "--runs",
        "2",
        "--warmup",
        "1",
        "--no-thop",
        "--store",
        str(store),
        "--json",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout.strip().splitlines()[-1])
    # params are sum(numel) of the official LKDN x4 (published 322K); FLOPs counted at 180x320 LR
    assert obj["params"] == 321_992 and (obj["lr_h"], obj["lr_w"]) == (180, 320)
    assert obj["flops_paper"] == pytest.approx(18.22e9, rel=0.005) and obj["latency_ms_median"] > 0
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "skipped" in res.stderr
    assert len(Store(store).rows(kind="profile")) == 1


def test_profile_fp16_on_cpu_is_a_clean_error(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    res = _run(["profile", "-m", "lkdn", "--dtype", "fp16"], store)
    _assert_clean_failure(res, store, "fp16", "CUDA")


def test_a_bug_keeps_its_traceback_only_harness_errors_become_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # was: every ValueError was printed as one "error:" line with exit 2, hiding the traceback of real bugs
    import harness.evaluate

    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside the metrics")

    monkeypatch.setattr(harness.evaluate, "psnr_ssim", broken)
    store = tmp_path / "r.db"
    res = runner.invoke(app, ["eval", "-m", "bicubic", "--store", str(store)])
    assert res.exit_code == 1 and isinstance(res.exception, ValueError), res.output
    assert "error:" not in res.output
    # an expected failure (a HarnessError) is still one line, exit 2
    res = runner.invoke(app, ["eval", "-m", "bicubic", "--protocol", "nope", "--store", str(store)])
    _assert_clean_failure(res, store, "unknown protocol")


@pytest.mark.parametrize("device", ["cuda:7", "gpu-please"])
def test_a_device_that_is_not_there_is_one_line_before_any_work(tmp_path: Path, device: str) -> None:
    store = tmp_path / "r.db"
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    for cmd in (["eval", "-m", "bicubic"], ["profile", "-m", "bicubic"]):
        res = runner.invoke(app, [*cmd, "--device", device, "--store", str(store)])
        _assert_clean_failure(res, store, device)


def _inf_model(scale: int) -> torch.nn.Module:
    return _nan_model(scale, float("inf"))


def _nan_model(scale: int, value: float = float("nan")) -> torch.nn.Module:
    """A 'checkpoint' with NaN (or inf) weights: every output pixel is NaN (inf)."""
    from harness.bicubic_model import Bicubic

    class Broken(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = Bicubic(scale)
            self.w = torch.nn.Parameter(torch.tensor(value))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.up(x) * self.w

    return Broken()


@pytest.mark.parametrize("factory", ["_nan_model", "_inf_model"])
def test_nan_output_is_an_error_naming_model_and_image_and_nothing_is_stored(tmp_path: Path, factory: str) -> None:
    # was: NaN cast to black scored 7.6 dB and was stored as the model's number
    _make_set(tmp_path / "data")
    store = tmp_path / "r.db"
    name = f"{__name__}:{factory}"  # the module as pytest imported it
    Store(store).add({"kind": "eval", "model": name, "scale": 2, "dataset": "Set5",
                      "protocol": "basicsr", "psnr": 30.0, "ssim": 0.9})  # fmt: skip
    before = Store(store).rows()
    ckpt = tmp_path / "nan.pth"
    torch.save({"params": globals()[factory](2).state_dict()}, ckpt)
    res = runner.invoke(app, ["eval", "-m", name, "-s", "2", "-d", "Set5",
                              "--checkpoint", str(ckpt), "--data-root", str(tmp_path / "data"), "--store",
                              str(store), "--json"])  # fmt: skip
    assert res.exit_code == 2 and "NaN" in res.output and "img0" in res.output, res.output
    assert "Traceback" not in res.output and res.stdout.strip() == ""
    assert Store(store).rows() == before  # the good row is untouched


@pytest.mark.parametrize("size", [(8, 8), (8, 2000), (18, 40), (3, 3)])  # (3, 3): smaller than the scale
def test_an_image_too_small_for_the_shave_is_an_error_naming_it(tmp_path: Path, size: tuple[int, int]) -> None:
    # was: 2000x8 or 8x8 at x4 turned the set's mean into NaN, printed as `NaN` (invalid JSON) and stored
    hr = _make_set(tmp_path / "data", n=1, size=(40, 40))
    Image.fromarray(np.zeros((*size, 3), dtype=np.uint8)).save(hr / "tiny.png")
    store = tmp_path / "r.db"
    res = _run(["eval", "-m", "bicubic", "-s", "4", "-d", "Set5", "--data-root", str(tmp_path / "data"),
                "--json"], store)  # fmt: skip
    _assert_clean_failure(res, store, "tiny.png", f"{size[1] // 4 * 4}x{size[0] // 4 * 4}", "too small")


def test_the_store_refuses_non_finite_numbers(tmp_path: Path) -> None:
    from harness.errors import NonFiniteResultError

    db = Store(tmp_path / "r.db")
    key = {"kind": "eval", "model": "m", "scale": 4, "dataset": "Set5", "protocol": "basicsr"}
    db.add({**key, "psnr": 30.0, "ssim": 0.9})
    for bad in ({"psnr": float("nan")}, {"psnr": float("inf")}, {"metrics": {"per_image": [{"psnr": float("nan")}]}}):
        with pytest.raises(NonFiniteResultError, match="not a finite number"):
            db.add({**key, "psnr": 31.0, "ssim": 0.9, **bad})
    assert [r["psnr"] for r in db.rows()] == [30.0]  # a NaN never replaces a finite row


@pytest.mark.parametrize("blocker", ["cache-is-a-file", "lr-is-a-file"])
def test_an_unusable_lr_cache_falls_back_to_memory_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocker: str
) -> None:
    # was: a traceback; now LR is made in memory, the numbers are the same, one warning names the variable
    _make_set(tmp_path / "data")
    args = ["eval", "-m", "bicubic", "-s", "2", "-d", "Set5", "--data-root", str(tmp_path / "data"), "--json"]
    good = runner.invoke(app, [*args, "--store", str(tmp_path / "good.db")])
    assert good.exit_code == 0, good.output
    cache = tmp_path / "cache"
    if blocker == "cache-is-a-file":
        cache.write_text("not a folder")
    else:
        cache.mkdir()
        (cache / "lr").write_text("not a folder")
    monkeypatch.setenv("LMFN_BENCH_CACHE", str(cache))
    import harness.data

    monkeypatch.setattr(harness.data, "_warned_cache", [])  # the warning is once per process
    res = runner.invoke(app, [*args, "--store", str(tmp_path / "r.db")])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("LR cache unusable") == 1 and "LMFN_BENCH_CACHE" in res.stderr, res.stderr
    import json

    assert json.loads(res.stdout)["psnr"] == json.loads(good.stdout)["psnr"]


def test_report_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    store = tmp_path / "r.db"
    Store(store).add({"kind": "eval", "model": "bicubic", "scale": 4, "dataset": "Set5", "protocol": "basicsr",
                      "psnr": 28.4, "ssim": 0.81})  # fmt: skip
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    res = runner.invoke(app, ["report", "--store", str(store), "--out", str(target)])
    assert res.exit_code == 2 and "is a file" in res.output and "Traceback" not in res.output, res.output
    assert target.read_text() == "keep me"


def test_an_image_identical_to_its_sr_is_one_line_not_an_infinite_mean(tmp_path: Path) -> None:
    # was: PSNR +inf (a flat image under bicubic) entered the set mean
    hr = _make_set(tmp_path / "data", n=1, size=(40, 40))
    Image.fromarray(np.full((40, 40, 3), 128, dtype=np.uint8)).save(hr / "flat.png")
    store = tmp_path / "r.db"
    for protocol in ("basicsr", "matlab"):
        res = _run(["eval", "-m", "bicubic", "-s", "2", "-d", "Set5", "--protocol", protocol, "--data-root",
                    str(tmp_path / "data"), "--json"], store)  # fmt: skip
        _assert_clean_failure(res, store, "flat", "+inf")


def test_a_float_tiff_is_refused_instead_of_read_as_zeros(tmp_path: Path) -> None:
    hr = _make_set(tmp_path / "data", n=1)
    Image.fromarray(np.random.default_rng(0).random((40, 36), dtype=np.float32) * 255).save(hr / "float.tif")
    store = tmp_path / "r.db"
    res = _run(["eval", "-m", "bicubic", "-s", "2", "-d", "Set5", "--data-root", str(tmp_path / "data")], store)
    _assert_clean_failure(res, store, "float.tif", "32-bit floats")


@pytest.mark.parametrize("target", ["loop", "nowhere"])
def test_a_broken_or_looping_link_in_a_set_is_an_error_like_a_bad_file(tmp_path: Path, target: str) -> None:
    hr = _make_set(tmp_path / "data")
    link = hr / "linked.png"
    link.symlink_to(link if target == "loop" else tmp_path / "missing.png")
    store = tmp_path / "r.db"
    res = _run(["eval", "-m", "bicubic", "-s", "2", "-d", "Set5", "--data-root", str(tmp_path / "data")], store)
    _assert_clean_failure(res, store, "linked.png", "link")


def returns_none(scale: int) -> None:
    return None


def takes_nothing() -> torch.nn.Module:
    return torch.nn.Identity()


def does_not_upscale(scale: int) -> torch.nn.Module:
    return torch.nn.Identity()


@pytest.mark.parametrize(
    ("factory", "needle"),
    [("returns_none", "returned NoneType"), ("takes_nothing", "cannot be called as factory(scale)"),
     ("does_not_upscale", "does not upscale by 2")],
)  # fmt: skip
def test_a_bad_user_factory_is_one_line(tmp_path: Path, factory: str, needle: str) -> None:
    store = tmp_path / "r.db"
    res = _run(["eval", "-m", f"{__name__}:{factory}", "-s", "2"], store)
    _assert_clean_failure(res, store, needle)
