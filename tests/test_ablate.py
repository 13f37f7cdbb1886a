"""``lmfn-bench ablate``: grid, grid id, common random numbers, locks, SIGKILL + rerun, the submitit path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from harness import ablation
from harness.ablation.runs import DONE_FILE, LOCK_FILE
from harness.cli import app
from harness.errors import UsageError
from harness.store import KEY_COLS, Store
from harness.train import Trainer

runner = CliRunner()


def _pngs(folder: Path, n: int, size: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, size)[None, :, None]
    for i in range(n):
        img = ramp + rng.integers(0, 50, (size, size, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"im{i}.png")


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    """A data root with tiny Set5 (3 images) and Set14 (2), and a training folder of 3 PNGs."""
    root = tmp_path / "data"
    _pngs(root / "benchmark" / "Set5" / "HR", 3, 48, 0)
    _pngs(root / "benchmark" / "Set14" / "HR", 2, 48, 1)
    _pngs(tmp_path / "train", 3, 64, 2)
    return root, tmp_path / "train"


def _grid(tmp_path: Path, data: tuple[Path, Path], variants=("lka", "msm"), seeds=2, sets=()):  # noqa: ANN001
    return ablation.make_grid(
        variants=variants, seeds=seeds, profile="smoke", scale=2, sets=["iters=3", *sets], data_root=data[0],
        train_data=[str(data[1])], ablation_set="Set5", out=tmp_path / "runs", store=tmp_path / "main.db",
    )  # fmt: skip


def _args(tmp_path: Path, data: tuple[Path, Path], *extra: str) -> list[str]:
    return ["ablate", "--profile", "smoke", "--scale", "2", "--data-root", str(data[0]), "--train-data",
            str(data[1]), "--ablation-set", "Set5", "--out", str(tmp_path / "runs"),
            "--store", str(tmp_path / "main.db"), *extra]  # fmt: skip


class Recorder(ablation.GridEvents):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, run, where):  # noqa: ANN001, ANN201
        self.events.append(("start", run.variant, run.seed))

    def finish(self, run, outcome, info):  # noqa: ANN001, ANN201
        self.events.append((outcome, run.variant, run.seed))

    def note(self, message):  # noqa: ANN001, ANN201
        self.events.append(("note", message))


def _log(run: ablation.Run) -> list[dict]:
    return [json.loads(line) for line in (run.dir / "log.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------------------------- the grid


def test_tables_variants_and_folding():
    assert [len(ablation.TABLES[t]) for t in ("1", "2", "all")] == [7, 4, 10]
    assert "ifm@mr" in ablation.TABLES["1"] and "lka-msm-ifm@mr" in ablation.TABLES["2"]
    assert ablation.table_variants("all", ["IFM", "lmfn", "lka"]) == ("lka", "ifm@mr", "lka-msm-ifm@mr")
    with pytest.raises(UsageError, match="variant 'nosuch' is not in table all"):
        ablation.table_variants("all", ["nosuch"])
    with pytest.raises(UsageError, match="is not in table 1"):
        ablation.table_variants("1", ["lka-msm-ifm@parallel"])
    with pytest.raises(UsageError, match="--table must be 1, 2 or all"):
        ablation.table_variants("3")


def test_grid_id_is_stable_for_a_recipe_and_changes_with_a_set(tmp_path, data):
    a, b = _grid(tmp_path, data), _grid(tmp_path, data, variants=("lka",), sets=["threads=1", "workers=2"])
    assert a.id == b.id and a.id.startswith("smoke-x2-")  # variants, threads, workers: not the recipe
    assert _grid(tmp_path, data, sets=["iters=4"]).id != a.id
    assert _grid(tmp_path, data, sets=["lr=2e-3"]).id != a.id
    cfg = a.config(a.run("msm", 1))
    assert (cfg.model, cfg.seed, cfg.grid, cfg.val_dataset, cfg.max_minutes) == ("msm", 1, a.id, "none", None)
    assert cfg.final_eval == ["Set5", "Set14"] and Path(cfg.out) == a.dir / "msm" / "seed1"
    assert cfg.store == str(a.dir / "msm" / "seed1" / "results.db")
    # a wall-clock profile still gets an iteration budget
    short = ablation.make_grid(variants=["lka"], profile="short", data_root=data[0], ablation_set="Set5",
                               out=tmp_path / "runs")  # fmt: skip
    assert short.base.max_minutes is None
    ablation.write_grid(a)
    back = ablation.load_grid(a.dir)
    assert back.id == a.id and back.variants == a.variants and back.seeds == (0, 1)


def test_same_seed_draws_the_same_patches_for_every_variant(tmp_path, data, torch_globals):
    """Common random numbers: the data order is a function of seed and sample index, not of the network."""
    spec = _grid(tmp_path, data)
    first = {}
    for v, s in (("lka", 0), ("msm", 0), ("lka", 1)):
        trainer = Trainer(spec.config(spec.run(v, s), threads=1), echo=lambda m: None)
        first[v, s] = next(trainer.batches(start=0))
    for a, b in zip(first["lka", 0], first["msm", 0], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first["lka", 0][1], first["lka", 1][1])


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["-m", "nosuch"], "variant 'nosuch' is not in table all"),
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--profile", "fast"], "unknown profile 'fast'"),
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--seeds", "2", "--seed", "3"], "not both"),
        (["--launcher", "pbs"], "--launcher must be one of local, slurm"),
    ],
)
def test_bad_input_is_one_line(tmp_path, data, extra, needle):
    res = runner.invoke(app, _args(tmp_path, data, *extra))
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output, res.output


def test_slurm_without_sbatch_is_a_usage_error(tmp_path, data, monkeypatch):
    monkeypatch.delenv(ablation.SUBMITIT_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    res = runner.invoke(app, _args(tmp_path, data, "-m", "lka", "--seeds", "1", "--launcher", "slurm"))
    assert res.exit_code == 2 and "no sbatch on PATH" in res.output, res.output


# ----------------------------------------------------------------------------------------------- locks


def test_a_live_lock_is_skipped_and_a_dead_one_does_not_block(tmp_path, data, torch_globals):
    spec = _grid(tmp_path, data, variants=("lka",), seeds=1)
    run = spec.run("lka", 0)
    run.dir.mkdir(parents=True)
    a, b = ablation.RunLock(run.dir), ablation.RunLock(run.dir)
    assert a.acquire() and not b.acquire(tries=1)  # flock is per open file, so this holds in one process too
    a.release()
    hold = ("import fcntl, json, os, sys, time\nf = open(sys.argv[1], 'a+')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
            "f.truncate(0); f.write(json.dumps({'pid': os.getpid(), 'host': 'elsewhere'})); f.flush()\n"
            "print('held', flush=True)\ntime.sleep(120)\n")  # fmt: skip
    cmd = [sys.executable, "-c", hold, str(run.dir / LOCK_FILE)]
    holder = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (st,) = ablation.grid_status(spec)
        assert (st.state, st.detail) == ("running", f"pid {holder.pid} on elsewhere")
        rec = Recorder()
        res = ablation.run_grid(spec, jobs=1, on=rec)
        assert res.counts["running"] == 1 and not (run.dir / DONE_FILE).exists()
        assert rec.events == [("note", f"lka seed 0: held by pid {holder.pid} on elsewhere; skipped")]
    finally:
        holder.kill()
        holder.wait()
    assert json.loads((run.dir / LOCK_FILE).read_text())["pid"] == holder.pid  # the dead holder's file stays
    assert ablation.grid_status(spec)[0].state == "todo"
    res = ablation.run_grid(spec, jobs=1, on=Recorder())
    assert res.complete and res.collected.runs == 1


def test_a_failed_run_says_why_and_is_retried_next_time(tmp_path, data, torch_globals):
    import shutil

    from harness.ablation.runs import work

    spec = _grid(tmp_path, data, variants=("lka",), seeds=1)
    run = spec.run("lka", 0)
    hidden = tmp_path / "elsewhere"
    shutil.move(data[1], hidden)  # the training folder vanishes after the grid was made
    rec = Recorder()
    res = ablation.run_grid(spec, jobs=1, on=rec)
    (st,) = res.status
    assert st.state == "failed" and str(data[1]) in st.detail and "\n" not in st.detail  # one line, says why
    assert rec.events == [("start", "lka", 0), ("failed", "lka", 0)]
    events: list[dict] = []
    work(spec, [run], events.append, since=0.0)  # failed during "this invocation": left for the next one
    assert events == []
    shutil.move(hidden, data[1])
    res = ablation.run_grid(spec, jobs=1, on=Recorder())
    assert res.complete and not (run.dir / "failed.json").exists()


# ------------------------------------------------------------------------------------------ local launcher


def _kill_and_hold(run: ablation.Run, at: int, got: dict) -> None:
    """SIGKILL whoever trains ``run`` once it has checkpoint ``at``; then hold its lock (a live process
    elsewhere), so the other worker passes it by and the rerun must resume it."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:
        log = run.dir / "log.jsonl"
        its = [r["iter"] for r in map(json.loads, log.read_text().splitlines()[:-1])
               if r["event"] == "checkpoint"] if log.is_file() else []  # fmt: skip
        holder = ablation.lock_holder(run.dir)
        if its and its[-1] >= at and holder:
            os.kill(holder["pid"], signal.SIGKILL)
            got["pid"], got["done_before"] = holder["pid"], (run.dir / DONE_FILE).exists()
            while ablation.lock_holder(run.dir):
                time.sleep(0.005)
            lock = ablation.RunLock(run.dir)
            got["held"] = lock.acquire(tries=100)
            got["lock"] = lock
            return
        time.sleep(0.005)


def test_local_grid_sigkill_then_rerun_finishes_every_run_once(tmp_path, data, torch_globals):
    sets = ["iters=20", "ckpt_every=2"]
    spec = _grid(tmp_path, data, sets=sets)
    victim, got = spec.run("lka", 0), {}
    killer = threading.Thread(target=_kill_and_hold, args=(victim, 2, got))
    killer.start()
    rec = Recorder()
    try:
        res = ablation.run_grid(spec, jobs=2, on=rec)
    finally:
        killer.join()
        if "lock" in got:
            got["lock"].release()
    assert got.get("held") and got["done_before"] is False, got
    assert res.counts == {"done": 3, "running": 1, "failed": 0, "todo": 0}
    notes = [e[1] for e in rec.events if e[0] == "note"]
    assert any("worker 1 ended (killed by signal 9)" in n for n in notes), rec.events
    assert ("start", "lka", 0) in rec.events and ("done", "lka", 0) not in rec.events
    st = {(r.variant, r.seed): r for r in ablation.grid_status(spec)}
    assert st["lka", 0].state == "todo" and st["lka", 0].detail.startswith("resumes at iteration ")
    assert res.collected.runs == 3

    # the rerun: the same command resumes the killed run and touches nothing else
    args = _args(tmp_path, data, "-m", "lka", "-m", "msm", "--seeds", "2", "--set", "iters=20", "--set",
                 "ckpt_every=2", "--jobs", "2")  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "start   lka seed 0" in r.output and r.output.count("start   ") == 1, r.output
    assert f"grid {spec.id}: 4/4 runs done" in r.output
    for run in spec.runs():
        log = _log(run)
        assert [e["reason"] for e in log if e["event"] == "end"] == ["done"]  # finished exactly once
        rows = Store(run.dir / "results.db").rows()
        assert sorted(x["dataset"] for x in rows) == ["Set14", "Set5"]  # one eval row per set
    starts = [e["iter"] for e in _log(victim) if e["event"] == "start"]
    assert starts[0] == 0 and starts[1] >= 2 and len(starts) == 2  # resumed from its checkpoint

    main = Store(tmp_path / "main.db").rows()
    assert len(main) == 8 and len({tuple(x[k] for k in KEY_COLS) for x in main}) == 8
    for x in main:
        extra = x["extra"]
        assert extra["grid"] == spec.id and extra["seed"] in (0, 1) and extra["train_seconds"] > 0
        assert len(x["metrics"]["per_image"]) == (3 if x["dataset"] == "Set5" else 2)
        assert x["extra"]["iteration"] == 20 and x["source"] == "trained"
    r = runner.invoke(app, [*args, "--collect"])
    assert r.exit_code == 0 and "merged 0 new rows from 4 finished runs" in r.output, r.output
    assert len(Store(tmp_path / "main.db").rows()) == 8
    r = runner.invoke(app, [*args, "--status", "--json"])
    states = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.exit_code == 0 and [s["state"] for s in states] == ["done"] * 4
    assert {(s["variant"], s["seed"]) for s in states} == {(v, s) for v in ("lka", "msm") for s in (0, 1)}
    _report_shows_the_spread_and_the_interval(tmp_path)


def _report_shows_the_spread_and_the_interval(tmp_path: Path) -> None:
    """Table 1 from the merged store: mean ± std over the 2 seeds; the paired interval of lka vs msm."""
    out = tmp_path / "report"
    r = runner.invoke(app, ["report", "--store", str(tmp_path / "main.db"), "-f", "md", "--out", str(out),
                            "--ablation-dataset", "Set5", "--scale", "2", "--compare", "lka", "msm"])  # fmt: skip
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    lka = next(ln for ln in md.splitlines() if ln.startswith("| LKA |"))
    assert lka.count("±") == 2, lka  # PSNR and SSIM over seeds
    assert "over 2 seeds" in md
    comparison = next(ln for ln in md.splitlines() if ln.startswith("| Set5 ×2 |"))
    assert "[" in comparison and comparison.endswith("| 2 | 3 |"), comparison  # 2 seeds, then 3 images each


# ----------------------------------------------------------------------------------------------- SLURM path


def test_slurm_path_through_submitits_local_executor(tmp_path, data):
    args = _args(tmp_path, data, "-m", "lka", "--seeds", "2", "--set", "iters=3", "--launcher", "slurm",
                 "--submitit-cluster", "local", "--cpus-per-job", "1", "--time-min", "10")  # fmt: skip
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.output.count("(job ") == 2 and "2/2 runs done" in r.output, r.output
    spec = _grid(tmp_path, data, variants=("lka",))
    assert (spec.dir / "submitit").is_dir()
    rows = Store(tmp_path / "main.db").rows()
    got = sorted((x["extra"]["seed"], x["dataset"]) for x in rows)
    assert got == [(0, "Set14"), (0, "Set5"), (1, "Set14"), (1, "Set5")]
    r = runner.invoke(app, args)  # nothing left to do: nothing submitted, nothing merged twice
    assert r.exit_code == 0 and "(job " not in r.output and "merged 0 new rows" in r.output, r.output
