"""The prepared GPU check (benchmarks/gpu_check.py): its CPU plumbing run end to end (what CI proves before
a GPU machine is ever lent), and its small parts against algebra."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import zoo
from harness.measure import count_params
from harness.store import Store

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@functools.cache
def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def test_steady_rate_skips_the_warm_up(tmp_path: Path) -> None:
    # 10 records: the first two (20%) are warm-up at 1 it/s, then exactly 8 it/s
    recs = [{"event": "step", "iter": i, "elapsed": float(i)} for i in (1, 2)]
    recs += [{"event": "step", "iter": 2 + 8 * k, "elapsed": 2.0 + k} for k in range(1, 9)]
    recs.insert(3, {"event": "val", "iter": 10})
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(map(json.dumps, recs)) + "\n")
    assert _module().steady_rate(log) == pytest.approx(8.0)
    log.write_text(json.dumps(recs[0]) + "\n")
    assert _module().steady_rate(log) is None  # one record: no rate, not a division by zero


def test_steps_record_failures_and_budget_skips() -> None:
    mod, summary = _module(), {"steps": {}}
    steps = mod.Steps(budget_s=5.0, summary=summary)
    assert steps.run("ok", lambda: 41 + 1) == 42
    assert steps.run("boom", lambda: 1 / 0) is None
    assert steps.run("late", lambda: 1, needs_s=60.0) is None
    assert summary["ok"] == 42 and summary["steps"]["ok"]["status"] == "ok"
    assert summary["steps"]["boom"]["status"] == "failed" and "ZeroDivisionError" in summary["steps"]["boom"]["error"]
    assert summary["steps"]["late"]["status"] == "skipped" and "late" not in summary
    assert steps.failed == ["boom"]


def test_latency_configs_cover_every_gpu_path() -> None:
    mod = _module()
    gpu = mod.Plan("cuda", "fp16", None, None, compile=True, train_profile="paper")
    got = {(c["dtype"], c.get("channels_last", False), c.get("compile", False)) for c in mod.latency_configs(gpu, "lmfn")}
    assert got == {("fp32", False, False), ("fp16", False, False), ("fp32", True, False), ("fp32", False, True)}
    assert len(mod.latency_configs(gpu, "bsrn")) == 2  # fp32 + half only off the two focus models
    # on a GPU every official-weight x4 model is timed, plus LMFN
    names = mod.latency_models(gpu)
    assert names[-1] == "lmfn" and {"lkdn", "bsrn", "vapsr", "imdn"} <= set(names)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this is the CPU dry run; a CUDA machine runs the real check")
def test_cpu_dry_run_checks_the_plumbing_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no CUDA device here" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["plumbing_only"] is True and summary["failed"] == []
    assert {n: s["status"] for n, s in summary["steps"].items()} == dict.fromkeys(
        ("environment", "latency", "train", "ddp", "eval", "report"), "ok"
    )
    # latency: fp32, the half precision (bf16 on CPU) and channels_last for both models, all finite
    lat = {(r["model"], r["dtype"], r["channels_last"]) for r in summary["latency"]}
    assert lat == {(m, d, cl) for m in ("lkdn", "lmfn") for d, cl in (("fp32", False), ("bf16", False), ("fp32", True))}
    assert all(math.isfinite(r["median_ms"]) and r["median_ms"] > 0 for r in summary["latency"])
    # the store keeps each configuration as its own profile row; params match the zoo's networks
    profiles = [r for r in Store(out / "results.db", readonly=True).rows() if r["kind"] == "profile"]
    assert len({(r["model"], r["device_key"]) for r in profiles}) == 6
    for r in profiles:
        assert r["metrics"]["params"] == count_params(zoo.build(r["model"], 4))
    assert sum("flops_paper" in r["metrics"] or "flops" in r["metrics"] for r in profiles) >= 2
    # training: the smoke recipe's 6 iterations in-process, and 1-process DDP over gloo
    assert summary["train"]["iterations"] == 6 and summary["train"]["it_per_s"] > 0
    assert summary["ddp"]["backend"] == "gloo" and summary["ddp"]["world_size"] == 1 and summary["ddp"]["it_per_s"] > 0
    # eval on "the device" (the CPU here) against a CPU evaluation: identical
    assert summary["eval"] and all(e["abs_diff_db"] == 0.0 for e in summary["eval"])
    assert any(p.endswith(".html") for p in summary["report"])
