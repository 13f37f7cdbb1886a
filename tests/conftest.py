"""Shared fixtures: the read-only reference folder (../shared or $LMFN_BENCH_SHARED) and a private cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from report_fixtures import IMAGES, OLD, PUBLISHED, _eval, _profile, add_figures, add_grid

from harness.paths import SHARED_ENV, shared_dir
from harness.store import Store
from reports.inputs import load_report


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # LR caches and downloads go to a per-session temp dir, never into ../shared or the user's cache
    monkeypatch.setenv("LMFN_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    # and an empty weights cache: no test sees official files fetched on this machine unless it puts them there
    monkeypatch.setenv("LMFN_BENCH_WEIGHTS", str(tmp_path_factory.getbasetemp() / "weights-cache"))
    monkeypatch.delenv("LMFN_BENCH_WEIGHTS_URL", raising=False)


@pytest.fixture(autouse=True)
def _one_thread(request: pytest.FixtureRequest):
    """Fast tests use tiny tensors: one thread is faster, and on a loaded CI box OpenMP barriers can cost 10-30x."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def torch_globals():
    """Training sets thread count / determinism process-wide; put them back."""
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def _need(rel: str) -> Path:
    root = shared_dir()
    if root is None:
        pytest.skip(f"reference folder not found (set ${SHARED_ENV} or put it at ../shared)")
    p = root / rel
    if not p.exists():
        pytest.skip(f"reference data missing: {p}")
    return p


@pytest.fixture
def shared() -> Path:
    return _need(".")


@pytest.fixture
def data_root() -> Path:
    """../shared/data: benchmark/{Set5,Set14}/HR and train/{T91,BSD200}."""
    return _need("data/benchmark/Set5/HR").parents[2]


@pytest.fixture
def weights_dir() -> Path:
    return _need("weights")


@pytest.fixture
def need_shared():
    """Call with a path relative to ../shared; skips (saying what is missing) when it is absent."""
    return _need


# ----------------------------------------------------------------------------------------------------------
# the report tests' synthetic store (tests/report_fixtures.py builds it), built once per test module


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "results.db"
    db = Store(path)
    # Table 3, x4. IMDN Set5: an older checkpoint's row must lose to the newer one.
    _eval(db, "imdn", 4, "Set5", 30.00, 0.8000, hash="old", at=OLD)
    _eval(db, "imdn", 4, "Set5", 32.21, 0.8948, hash="new")
    _eval(db, "imdn", 4, "Set14", 28.58, 0.7811)
    _eval(db, "bsrn", 4, "Set5", 32.35, 0.8966)
    _eval(db, "bsrn", 4, "Manga109", 30.84, 0.9123)
    _eval(db, "lkdn", 4, "Set5", 32.39, 0.8979)
    _eval(db, "lkdn", 4, "Manga109", 30.97, 0.9140)
    _eval(db, "vapsr", 4, "Set5", 32.3901, 0.8978)  # ties LKDN at the shown 2 decimals
    # bicubic's paper protocol is matlab: the older matlab row beats the newer basicsr one
    _eval(db, "bicubic", 4, "Set5", 28.42, 0.8104, protocol="matlab", at=OLD)
    _eval(db, "bicubic", 4, "Set5", 28.53, 0.8110)
    _eval(db, "lmfn", 4, "Set5", 32.50, 0.8990, trained=True)
    _eval(db, "lmfn", 4, "Manga109", 31.00, 0.9150, trained=True)
    _eval(db, "imdn", 2, "Set5", 38.00, 0.9605)  # a lone x2 row: nothing to rank it against
    for m, p, f in (
        ("imdn", 715176, 40.89e9),
        ("bsrn", 352000, 19.41e9),
        ("lkdn", 322000, 18.35e9),
        ("lmfn", 380000, 20.1e9),
        ("bicubic", 0, 0.0),
    ):
        _profile(db, m, 4, p, f)
    _profile(db, "lkdn", 4, 322000, 7.0e9, input="ntire256", key="ntire")  # not the 1280x720 protocol
    # Tables 1-2 on Manga109 x4 (the alias `lmfn` above is the lka-msm-ifm@mr row)
    _eval(db, "lka", 4, "Manga109", 30.50, 0.9050, trained=True)
    _eval(db, "msm", 4, "Manga109", 30.40, 0.9040, trained=True)
    _eval(db, "lka-msm", 4, "Manga109", 30.60, 0.9070, trained=True)
    _eval(db, "ifm@mr", 4, "Manga109", 30.55, 0.9060, trained=True)
    _eval(db, "lka-msm-ifm@parallel", 4, "Manga109", 30.80, 0.9120, trained=True)
    _eval(db, "lka-msm-ifm@cascade", 4, "Manga109", 30.70, 0.9100, trained=True)
    _eval(db, "lka-msm-ifm@mr-cross", 4, "Urban100", 26.00, 0.7900, trained=True)  # other set: not shown
    _profile(db, "lka", 4, 322000, 18.35e9)
    _profile(db, "ifm@mr", 4, 390000, 21.0e9)
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("pub") / "published.csv"
    p.write_text(PUBLISHED)
    return p


@pytest.fixture(scope="module")
def report(store: Path, published: Path):
    return load_report(store, "Manga109", 4, published=published)


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with an ablation grid (report_fixtures.add_grid), a standalone Table 2 run and Table 3 rows
    with per-image PSNR: LKDN over BSRN not resolved on Set5, resolved on Manga109."""
    path = tmp_path_factory.mktemp("grid") / "results.db"
    db = Store(path)
    add_grid(db)
    _eval(db, "lka-msm-ifm@parallel", 4, "Manga109", 29.9, 0.9070, trained=True)  # outside the grid
    bsrn = dict(zip(IMAGES, (32.0, 31.5, 33.0, 30.5, 31.0), strict=True))
    for ds, gap in (("Set5", (0.30, -0.20, 0.25, -0.15, 0.05)), ("Manga109", (0.10, 0.12, 0.11, 0.09, 0.13))):
        lkdn = {i: v + g for (i, v), g in zip(bsrn.items(), gap, strict=True)}
        for model, values in (("bsrn", bsrn), ("lkdn", lkdn)):
            _eval(db, model, 4, ds, sum(values.values()) / 5, 0.90, per_image=values)
    return path


@pytest.fixture(scope="module")
def grid_report(grid_store: Path, published: Path):
    return load_report(
        grid_store, "Manga109", 4, published=published, compare=[("lka", "lmfn"), ("lkdn", "bsrn")]
    )


@pytest.fixture(scope="module")
def figure_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Table 3 / Fig. 1 rows of five models plus the lam and visual rows (and PNGs) of
    report_fixtures.add_figures."""
    folder = tmp_path_factory.mktemp("figures")
    db = Store(folder / "results.db")
    for model, psnr, params, flops in (("bicubic", 28.42, 0, 0.0), ("lkdn", 32.39, 322000, 18.35e9),
                                        ("bsrn", 32.35, 352000, 19.41e9), ("vapsr", 32.38, 342000, 19.6e9)):
        _eval(db, model, 4, "Set5", psnr, 0.89)
        _profile(db, model, 4, params, flops)
    _eval(db, "lmfn", 4, "Set5", 32.50, 0.8990, trained=True)
    _profile(db, "lmfn", 4, 380000, 20.1e9)
    add_figures(db, folder / "png")
    return folder / "results.db"


@pytest.fixture(scope="module")
def figure_report(figure_store: Path, published: Path):
    return load_report(figure_store, "Manga109", 4, published=published)
