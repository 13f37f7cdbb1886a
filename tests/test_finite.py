"""Property: every number `eval`, `profile` and `train` print as JSON or write to the store is finite; a case
that cannot give a finite number is a one-line error that stores nothing (hypothesis over small random and
degenerate images, scales and protocols)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from harness.cli import app
from harness.settings import PROTOCOLS
from harness.store import Store

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KINDS = ("noise", "flat", "gray", "ramp", "binary")


def _image(kind: str, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "flat":
        return np.full((h, w, 3), rng.integers(0, 256), dtype=np.uint8)
    if kind == "gray":
        return rng.integers(0, 256, (h, w), dtype=np.uint8)
    if kind == "ramp":
        return np.broadcast_to(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, w, 3)).copy()
    if kind == "binary":
        return (rng.integers(0, 2, (h, w, 3)) * 255).astype(np.uint8)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _numbers(obj: object) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, list):
        return [x for v in obj for x in _numbers(v)]
    return []


def _strict_json(line: str) -> dict:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-finite number {token} printed as JSON: {line}")

    return json.loads(line, parse_constant=refuse)


def _check(res, store: Path) -> None:
    """Success: every printed and stored number finite. Failure: exit 2, one line, nothing stored."""
    if res.exit_code != 0:
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == [res.stderr.strip().splitlines()[-1]]
        assert not store.exists() or Store(store).rows() == []
        return
    for line in res.stdout.splitlines():
        if line.startswith("{"):
            assert all(math.isfinite(x) for x in _numbers(_strict_json(line)))
    rows = Store(store).rows()
    assert rows
    for r in rows:
        assert all(math.isfinite(x) for x in _numbers([r["psnr"], r["ssim"], r["metrics"], r["extra"]]))


@SETTINGS
@given(
    sizes=st.lists(st.tuples(st.integers(1, 56), st.integers(1, 56)), min_size=1, max_size=3),
    kind=st.sampled_from(KINDS),
    scale=st.sampled_from([2, 3, 4]),
    protocol=st.sampled_from(PROTOCOLS),
    seed=st.integers(0, 2**16),
)
def test_eval_prints_and_stores_only_finite_numbers(tmp_path_factory, sizes, kind, scale, protocol, seed):
    root = tmp_path_factory.mktemp("data")
    hr = root / "benchmark" / "Set5" / "HR"
    hr.mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(_image(kind, h, w, seed + i)).save(hr / f"im{i}.png")
    store = root / "r.db"
    res = CliRunner().invoke(app, ["eval", "-m", "bicubic", "-d", "Set5", "-s", str(scale), "--protocol", protocol,
                                   "--data-root", str(root), "--store", str(store), "--json"])  # fmt: skip
    _check(res, store)


@SETTINGS
@given(scale=st.sampled_from([2, 3, 4]), h=st.integers(1, 24), w=st.integers(1, 24))
def test_profile_prints_and_stores_only_finite_numbers(tmp_path_factory, scale, h, w):
    store = tmp_path_factory.mktemp("p") / "r.db"
    res = CliRunner().invoke(app, ["profile", "-m", "lkdn", "-s", str(scale), "--latency-size", f"{h}x{w}", "--runs",
                                   "1", "--warmup", "0", "--no-thop", "--store", str(store), "--json"])  # fmt: skip
    _check(res, store)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), size=st.integers(20, 64), seed=st.integers(0, 2**16))
def test_train_prints_and_stores_only_finite_numbers(tmp_path_factory, torch_globals, kind, size, seed):
    root = tmp_path_factory.mktemp("t")
    train_dir, hr = root / "train" / "mine", root / "benchmark" / "Set5" / "HR"
    train_dir.mkdir(parents=True)
    hr.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(_image(kind, size, size, seed + i)).save(train_dir / f"t{i}.png")
        Image.fromarray(_image("noise", 40, 40, seed + 10 + i)).save(hr / f"v{i}.png")
    store = root / "r.db"
    res = CliRunner().invoke(app, ["train", "--variant", "lkdn", "--profile", "smoke", "--scale", "2",
                                   "--data-root", str(root), "--train-data", str(train_dir), "--val-dataset", "Set5",
                                   "--val-every", "2", "--out", str(root / "run"), "--store", str(store),
                                   "--threads", "1", "--json"])  # fmt: skip
    _check(res, store)
