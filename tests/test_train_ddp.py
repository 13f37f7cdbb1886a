"""Two-process DistributedDataParallel training on CPU (gloo) under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.train import MODEL_FILE, STATE_FILE, TrainConfig, read_state, train
from harness.zoo import build

REPO = Path(__file__).resolve().parents[1]


def test_torchrun_two_ranks_gloo(tmp_path, torch_globals):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    n, out = 3, tmp_path / "ddp"
    common = dict(scale=2, iters=n, batch_size=4, patch_size=16, lr=2e-3, ckpt_every=1,
                  train_data=["default"], val_dataset="none", threads=1, deterministic=True)  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "harness.cli.train", "--variant", "lkdn", "--profile", "smoke", "--scale", "2",
           "--iters", str(n),
           "--batch-size", "4", "--patch-size", "16", "--lr", "2e-3", "--ckpt-every", "1", "--train-data",
           "default", "--val-dataset", "none", "--threads", "1", "--deterministic", "--no-store",
           "--device", "cpu", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]

    # rank 0 alone wrote: one model file, one training state, one log; no per-rank copies or temp files
    assert sorted(p.name for p in out.iterdir()) == sorted([MODEL_FILE, STATE_FILE, "log.jsonl"])
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["world_size"] for e in log if e["event"] == "start"] == [2]
    assert [e["iter"] for e in log if e["event"] == "checkpoint"] == list(range(1, n + 1))  # not doubled
    (ranks,) = [e for e in log if e["event"] == "ranks"]
    assert len(ranks["weight_digests"]) == 2 and len(set(ranks["weight_digests"])) == 1  # identical weights
    st = read_state(out / STATE_FILE)
    assert (st["iteration"], st["samples_seen"], st["world_size"], len(st["rng"])) == (n, 4 * n, 2, 2)

    # each rank took half of the global batch a single process draws and gradients are averaged, so the
    # 2-rank run follows the single-process run up to float summation order
    train(
        TrainConfig.from_profile("lkdn", "smoke", out=str(tmp_path / "single"), **common), echo=lambda m: None
    )
    single = read_state(tmp_path / "single" / STATE_FILE)
    torch.manual_seed(0)  # the trainer seeds, then builds: these are both runs' initial weights
    init = build("lkdn", 2).state_dict()
    diff = sum(float((st["model"][k] - v).double().pow(2).sum()) for k, v in single["model"].items())
    moved = sum(float((v - init[k]).double().pow(2).sum()) for k, v in single["model"].items())
    assert moved > 0 and diff**0.5 <= 1e-2 * moved**0.5, (diff**0.5, moved**0.5)


def test_torchrun_init_distill_keeps_ranks_identical(tmp_path, torch_globals):
    """--init-distill under DDP averages the block gradients over ranks as DDP would: same weights after."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    ckpt, out = tmp_path / "lkdn_x2.pth", tmp_path / "ddp"
    torch.save({"params_ema": build("lkdn", 2).state_dict()}, ckpt)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "harness.cli.train", "--variant", "lka-msm-ifm", "--profile", "smoke", "--scale", "2",
           "--iters", "1", "--batch-size", "4", "--patch-size", "16", "--init", str(ckpt),
           "--init-distill", "3", "--distill-teacher", "lkdn", "--train-data", "default",
           "--val-dataset", "none", "--threads", "1", "--no-store", "--device", "cpu", "--out", str(out)]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                       text=True, timeout=240)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if e["event"] == "distill"] == [1, 2, 3]  # rank 0 alone logs
    (ranks,) = [e for e in log if e["event"] == "ranks"]
    assert len(set(ranks["weight_digests"])) == 1
    assert read_state(out / STATE_FILE)["samples_seen"] == 4 * (3 + 1)
