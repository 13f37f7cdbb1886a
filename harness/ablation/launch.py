"""Launchers: existing engines run the grid's runs, not a scheduler of ours.

``local``: K worker processes on this machine (``python -m harness.ablation.worker``; with K = 1 the runs go
in this process). Each goes once round the run list and takes every run whose lock it can get; torch threads
are split between workers, and with GPUs worker i sees only GPU i (``CUDA_VISIBLE_DEVICES``).
``slurm``: one job per run, submitted as a job array through submitit; with ``gpus_per_job > 1`` a job trains
under ``torchrun --standalone`` (DDP). ``cluster="local"`` (or ``$LMFN_BENCH_SUBMITIT_CLUSTER=local``) makes
submitit run the same jobs as local processes: the cluster path in CI.
After the runs (for a real cluster: only with ``wait``), finished runs are merged into the main store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.ablation.grid import GridSpec, Run, write_grid
from harness.ablation.runs import Collected, RunStatus, collect, execute_run, grid_status, is_done, work
from harness.errors import UsageError

LAUNCHERS = ("local", "slurm")
SUBMITIT_ENV = "LMFN_BENCH_SUBMITIT_CLUSTER"  # "local" / "debug": submitit's local executors (tests, CI)


class GridEvents:
    """Progress callbacks of :func:`run_grid` (one call per run start / finish); this base ignores them."""

    def start(self, run: Run, where: str) -> None: ...
    def finish(self, run: Run, outcome: str, info: dict[str, Any]) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int = 720  # per job; an interrupted run resumes from its checkpoint on the next invocation
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    wait: bool = False  # real SLURM: wait for the jobs and collect (submitit's local executors always wait)
    cluster: str | None = None  # None: $LMFN_BENCH_SUBMITIT_CLUSTER, else "slurm"


@dataclass
class GridResult:
    grid: str
    dir: Path
    status: list[RunStatus]
    collected: Collected | None  # None: submitted without waiting (collect later with ablate --collect)
    job_ids: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(r.state == s for r in self.status) for s in ("done", "running", "failed", "todo")}

    @property
    def complete(self) -> bool:
        return all(r.state == "done" for r in self.status)


def run_grid(
    spec: GridSpec,
    launcher: str = "local",
    jobs: int | None = None,
    on: GridEvents | None = None,
    *,
    slurm: SlurmOptions | None = None,
) -> GridResult:
    """Run every run of ``spec`` that is not done (interrupted ones resume), then merge finished runs into
    ``spec.store``. ``jobs``: local worker processes (default one per GPU, else 1)."""
    if launcher not in LAUNCHERS:
        raise UsageError(f"--launcher must be one of {', '.join(LAUNCHERS)}, got '{launcher}'")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    on = on or GridEvents()
    # absolute paths: workers and cluster jobs may start elsewhere
    spec = dataclasses.replace(spec, out=spec.out.resolve(), store=spec.store.resolve())
    write_grid(spec)
    todo = [r for r in spec.runs() if not is_done(spec, r)]
    ids: list[str] = []
    waited = True
    if todo and launcher == "local":
        run_local(spec, todo, jobs, on, since=time.time())
    elif todo:
        ids, waited = run_slurm(spec, todo, slurm or SlurmOptions(), on)
    return GridResult(spec.id, spec.dir, grid_status(spec), collect(spec) if waited else None, ids)


# ----------------------------------------------------------------------------------------------- local


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver is no GPU
        return 0


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Relay:
    """Worker events (dicts) -> :class:`GridEvents` calls, one at a time (they come from reader threads)."""

    def __init__(self, spec: GridSpec, on: GridEvents) -> None:
        self.spec, self.on, self.lock = spec, on, threading.Lock()
        self.own: set[int] = set()  # our workers' pids: passing each other's runs by is no news

    def __call__(self, ev: dict[str, Any]) -> None:
        run = self.spec.run(ev["variant"], int(ev["seed"]))
        with self.lock:
            if ev["event"] == "start":
                self.on.start(run, ev.get("where", ""))
            elif ev.get("outcome") == "busy":
                h = ev.get("info", {}).get("holder", {})
                if h.get("pid") in self.own and h.get("host") == socket.gethostname():
                    return
                self.on.note(f"{run.label}: held by pid {h.get('pid', '?')} on {h.get('host', '?')}; skipped")
            elif ev.get("outcome") != "skipped":
                self.on.finish(run, ev["outcome"], ev.get("info", {}))


def _gpu_env(i: int, gpus: int) -> dict[str, str]:
    if not gpus:
        return {}
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    ids = visible or [str(g) for g in range(gpus)]
    return {"CUDA_VISIBLE_DEVICES": ids[i % len(ids)]}


def _start_worker(
    spec: GridSpec, runs: Sequence[Run], i: int, threads: int, gpus: int, since: float
) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "harness.ablation.worker", "loop", "--grid-dir", str(spec.dir),
           "--start", str(i), "--threads", str(threads), "--name", f"worker {i + 1}",
           "--device", spec.base.device, "--since", repr(since)]  # fmt: skip
    for r in runs:
        cmd += ["--run", f"{r.variant}:{r.seed}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), **_gpu_env(i, gpus)}
    logs = spec.dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"worker{i + 1}.log", "a") as err:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True)


def _read_events(stream: IO[str], relay: _Relay) -> None:
    for line in stream:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:  # not an event (a library printing to stdout)
            continue
        if isinstance(ev, dict) and "event" in ev:
            relay(ev)


def run_local(
    spec: GridSpec, runs: Sequence[Run], jobs: int | None, on: GridEvents, since: float | None = None
) -> None:
    """``jobs`` workers over ``runs``; returns when every worker has ended (finished, or died: a killed
    worker's run keeps its checkpoint and its lock dies with it, so the next invocation resumes it)."""
    gpus = 0 if spec.base.device == "cpu" else gpu_count()
    jobs = jobs or max(1, gpus)
    threads = spec.base.threads or max(1, cpu_cores() // jobs)
    relay = _Relay(spec, on)
    if jobs == 1:  # in this process: no start-up cost, and Ctrl-C reaches the trainer directly
        work(spec, runs, relay, threads=threads, name="this process", since=since)
        return
    since = time.time() if since is None else since
    procs = [_start_worker(spec, runs, i, threads, gpus, since) for i in range(jobs)]
    relay.own = {p.pid for p in procs}
    readers = [threading.Thread(target=_read_events, args=(p.stdout, relay), daemon=True) for p in procs]
    for t in readers:
        t.start()
    try:
        for p in procs:
            p.wait()
    except KeyboardInterrupt:  # the workers got the same Ctrl-C: they save their runs and stop
        on.note("interrupted: waiting for the workers to save their runs")
        for p in procs:
            p.wait()
        raise
    for t in readers:
        t.join()
    for i, p in enumerate(procs):
        if p.returncode:
            why = f"killed by signal {-p.returncode}" if p.returncode < 0 else f"exit status {p.returncode}"
            on.note(f"worker {i + 1} ended ({why}); its run resumes on the next invocation "
                    f"(log: {spec.dir / 'logs' / f'worker{i + 1}.log'})")  # fmt: skip


# ----------------------------------------------------------------------------------------------- SLURM


def run_job(spec: GridSpec, variant: str, seed: int, gpus: int, threads: int | None) -> tuple[str, dict]:
    """One cluster job: the run (under torchrun when ``gpus > 1``), with the run's lock held here."""
    threads = threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0")) // max(1, gpus) or None
    return execute_run(spec, spec.run(variant, seed), threads=threads, gpus=gpus)


def _executor(spec: GridSpec, opts: SlurmOptions) -> tuple[Any, str]:
    import submitit

    cluster = opts.cluster or os.environ.get(SUBMITIT_ENV) or "slurm"
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--launcher slurm: no sbatch on PATH (run ablate on a SLURM login node)")
    ex = submitit.AutoExecutor(folder=spec.dir / "submitit", cluster=cluster)
    params: dict[str, Any] = {"name": f"ablate-{spec.id}", "timeout_min": opts.time_min, "nodes": 1,
                              "tasks_per_node": 1, "cpus_per_task": opts.cpus_per_job}  # fmt: skip
    if opts.gpus_per_job:
        params["gpus_per_node"] = opts.gpus_per_job
    if opts.partition:
        params["slurm_partition"] = opts.partition
    ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return ex, cluster


def run_slurm(
    spec: GridSpec, runs: Sequence[Run], opts: SlurmOptions, on: GridEvents
) -> tuple[list[str], bool]:
    """Submit ``runs`` as one job array; wait for them unless on a real cluster without ``opts.wait``.
    Returns (job ids, waited)."""
    from submitit.helpers import as_completed

    if opts.gpus_per_job < 0:
        raise UsageError(f"--gpus-per-job must be >= 0, got {opts.gpus_per_job}")
    ex, cluster = _executor(spec, opts)
    threads = max(1, opts.cpus_per_job // max(1, opts.gpus_per_job)) if opts.cpus_per_job else None
    n = len(runs)
    jobs = ex.map_array(run_job, [spec] * n, [r.variant for r in runs], [r.seed for r in runs],
                        [opts.gpus_per_job] * n, [threads] * n)  # fmt: skip
    by_id = {j.job_id: r for j, r in zip(jobs, runs, strict=True)}
    for j in jobs:
        on.start(by_id[j.job_id], f"job {j.job_id}")
    if cluster == "slurm" and not opts.wait:
        return list(by_id), False
    for j in as_completed(jobs, poll_frequency=1.0 if cluster != "slurm" else 30.0):
        try:
            outcome, info = j.result()
        except Exception as e:  # the job itself died (timeout, node failure): the run resumes next time
            lines = str(e).strip().splitlines() or [type(e).__name__]
            outcome, info = "failed", {"error": lines[-1][:400]}
        if outcome == "busy":
            on.note(f"{by_id[j.job_id].label}: held by another process; skipped")
        elif outcome != "skipped":
            on.finish(by_id[j.job_id], outcome, info)
    return list(by_id), True
