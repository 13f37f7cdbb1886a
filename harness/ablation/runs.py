"""One run of a grid: its lock, its markers, its state, executing it, and merging finished runs' stores.

Files in a run folder besides the trainer's: ``.lock`` (``flock``'d while a process works on the run; holds
that process's pid and host for ``--status``; the OS drops the lock when the process dies, so a killed run
never blocks the next attempt), ``done.json`` (written after the trainer returned normally), ``failed.json``
(the one-line error of the last attempt; the next invocation retries), ``train.out`` (the trainer's messages),
``results.db`` (the run's own store).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from harness.ablation.grid import RUN_STORE, GridSpec, Run
from harness.errors import StoreError
from harness.provenance import now
from harness.store import Store
from harness.train import STATE_FILE, train

LOCK_FILE = ".lock"
DONE_FILE = "done.json"
FAILED_FILE = "failed.json"
TRAIN_OUT = "train.out"
STATES = ("done", "running", "failed", "todo")
Emit = Callable[[dict], None]  # a worker event (start / finish) to whoever watches


class RunLock:
    """An exclusive, non-blocking ``flock`` on ``<run>/.lock``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._f: IO[str] | None = None

    def acquire(self, tries: int = 4, pause: float = 0.05) -> bool:
        """True when this process now holds the run. A few tries: a ``--status`` probe holds a shared lock for
        microseconds, and must not make a worker pass a free run by."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held until release()
        for i in range(tries):
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if i == tries - 1:
                    f.close()
                    return False
                time.sleep(pause)
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now()}))
        f.flush()
        self._f = f
        return True

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing drops the flock
            self._f = None


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """``{pid, host, since}`` of the live process holding the run, else None (a stale file is no holder)."""
    path = Path(run_dir) / LOCK_FILE
    if not path.is_file():
        return None
    with open(path) as f:
        try:  # shared and non-blocking: probes never block each other, and fail only against a holder
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(f.read() or "{}")
            except json.JSONDecodeError:
                return {}
        fcntl.flock(f, fcntl.LOCK_UN)
    return None


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def final_rows(run: Run) -> list[dict]:
    """The run store's final eval rows (none when it has no store yet)."""
    path = run.dir / RUN_STORE
    try:
        return Store(path, readonly=True).rows(kind="eval") if path.is_file() else []
    except StoreError:  # the trainer is creating it right now
        return []


def failed_at(run: Run) -> float | None:
    """When the last attempt failed (``failed.json``'s mtime), or None."""
    try:
        return (run.dir / FAILED_FILE).stat().st_mtime
    except FileNotFoundError:
        return None


def is_done(spec: GridSpec, run: Run) -> bool:
    """Its ``done.json``, or (a kill between the last row and the marker) a final eval row for every set."""
    if (run.dir / DONE_FILE).is_file():
        return True
    return set(spec.eval_sets) <= {r["dataset"] for r in final_rows(run)}


def _last_checkpoint(run: Run) -> int | None:
    log = run.dir / "log.jsonl"
    if not (run.dir / STATE_FILE).is_file() or not log.is_file():
        return None
    records = map(_safe_json, log.read_text().splitlines())
    its = [r.get("iter") for r in records if r.get("event") == "checkpoint"]
    return its[-1] if its else 0


def _safe_json(line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError:  # a line cut by a kill
        return {}


@dataclass(frozen=True)
class RunStatus:
    variant: str
    seed: int
    state: str  # one of STATES
    detail: str  # running: "pid P on HOST"; failed: the error; todo: where it resumes; done: the result
    dir: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_status(spec: GridSpec, run: Run) -> RunStatus:
    def status(state: str, detail: str = "") -> RunStatus:
        return RunStatus(run.variant, run.seed, state, detail, str(run.dir))

    if is_done(spec, run):
        done = _read_json(run.dir / DONE_FILE)
        main = done.get("psnr", {}).get(spec.eval_sets[0])
        return status("done", f"{spec.eval_sets[0]} {main:.3f} dB" if main is not None else "")
    holder = lock_holder(run.dir)
    if holder is not None:
        return status("running", f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}")
    if (run.dir / FAILED_FILE).is_file():
        return status("failed", _read_json(run.dir / FAILED_FILE).get("error", "?"))
    it = _last_checkpoint(run)
    return status("todo", f"resumes at iteration {it} of {spec.base.iters}" if it is not None else "")


def grid_status(spec: GridSpec) -> list[RunStatus]:
    return [run_status(spec, r) for r in spec.runs()]


# ----------------------------------------------------------------------------------------------- executing


def _one_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()
    return (text[0] if text else type(e).__name__)[:400]


def _is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train_and_mark(
    spec: GridSpec, run: Run, threads: int | None = None, device: str | None = None
) -> tuple[str, dict]:
    """Train (resuming where a training state exists) and write the marker; the caller holds the lock (or,
    under torchrun, its parent does). Returns ``(outcome, info)``: done | failed | interrupted."""
    cfg = spec.config(run, threads, device)
    run.dir.mkdir(parents=True, exist_ok=True)
    with open(run.dir / TRAIN_OUT, "a") as log:

        def echo(msg: str) -> None:
            log.write(msg + "\n")
            log.flush()

        try:
            resume = (run.dir / STATE_FILE).is_file()
            # no state: a fresh attempt of a run this process holds the lock of (a kill may have left a model
            # file written just before its state)
            res = train(cfg, resume=resume, overwrite=not resume, echo=echo)
        except Exception as e:
            echo(traceback.format_exc())
            info = {"error": _one_line(e), "time": now()}
            if _is_rank0():
                _write_json(run.dir / FAILED_FILE, info)
            return "failed", info
    info = {"iteration": res.iteration, "train_seconds": round(res.seconds, 2),
            "psnr": {r["dataset"]: r["psnr"] for r in res.final}, "time": now()}  # fmt: skip
    if res.reason != "done":  # a signal: saved; the next invocation resumes it
        return "interrupted", info
    if _is_rank0():
        _write_json(run.dir / DONE_FILE, info)
    return "done", info


def _torchrun(spec: GridSpec, run: Run, gpus: int, threads: int | None, device: str) -> tuple[str, dict]:
    """The run under ``torchrun --standalone --nproc_per_node G`` (DDP from torchrun's env, one GPU each)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(gpus),
           "-m", "harness.ablation.worker", "one", "--grid-dir", str(spec.dir), "--variant", run.variant,
           "--seed", str(run.seed), "--device", device]  # fmt: skip
    if threads:
        cmd += ["--threads", str(threads)]
    rc = subprocess.run(cmd, check=False).returncode
    if rc == 0 and (run.dir / DONE_FILE).is_file():
        return "done", _read_json(run.dir / DONE_FILE)
    if rc == 0:
        return "interrupted", {}
    if not (run.dir / FAILED_FILE).is_file():  # a rank died before rank 0 could say why
        _write_json(run.dir / FAILED_FILE, {"error": f"torchrun exited with status {rc}", "time": now()})
    return "failed", _read_json(run.dir / FAILED_FILE)


def execute_run(
    spec: GridSpec,
    run: Run,
    *,
    threads: int | None = None,
    gpus: int = 1,
    device: str | None = None,
    on_start: Callable[[], None] | None = None,
) -> tuple[str, dict]:
    """Run ``run`` unless it is done or another live process holds it: ``(outcome, info)`` with outcome done |
    failed | interrupted | skipped (already done) | busy (``info["holder"]``: who holds it). ``on_start`` is
    called once the run is this process's to train."""
    lock = RunLock(run.dir)
    if not lock.acquire():
        return "busy", {"holder": lock_holder(run.dir) or {}}
    try:
        if is_done(spec, run):  # finished by another process since we looked
            if not (run.dir / DONE_FILE).is_file():
                _write_json(run.dir / DONE_FILE, {"psnr": {r["dataset"]: r["psnr"] for r in final_rows(run)}})
            return "skipped", {}
        (run.dir / FAILED_FILE).unlink(missing_ok=True)  # a retry
        if on_start is not None:
            on_start()
        if gpus > 1:
            return _torchrun(spec, run, gpus, threads, device or spec.base.device)
        return train_and_mark(spec, run, threads, device)
    finally:
        lock.release()


def work(
    spec: GridSpec,
    runs: Sequence[Run],
    emit: Emit,
    *,
    start: int = 0,
    threads: int | None = None,
    device: str | None = None,
    name: str = "",
    since: float | None = None,
) -> None:
    """Once round ``runs`` from ``start``: each run not done and not held elsewhere is trained here. A run
    that failed after ``since`` (this invocation, another worker) waits for the next invocation. Stops early
    after an interrupted run (a signal asked the whole worker to stop)."""
    where = name or f"pid {os.getpid()} on {socket.gethostname()}"
    for k in range(len(runs)):
        run = runs[(start + k) % len(runs)]
        failed = failed_at(run)
        if since is not None and failed is not None and failed >= since:
            continue
        ref = {"variant": run.variant, "seed": run.seed}
        outcome, info = execute_run(
            spec, run, threads=threads, device=device,
            on_start=lambda: emit({"event": "start", **ref, "where": where}),  # noqa: B023 - called at once
        )  # fmt: skip
        emit({"event": "finish", **ref, "outcome": outcome, "info": info, "where": where})
        if outcome == "interrupted":
            return


# ----------------------------------------------------------------------------------------------- collecting


@dataclass(frozen=True)
class Collected:
    runs: int  # finished runs whose stores were merged
    rows: int  # rows written into the main store (0 on a rerun: merge_from is idempotent)


def collect(spec: GridSpec) -> Collected:
    """Merge every finished run's store into the main store (``Store.merge_from``: newest wins per key)."""
    done = [r for r in spec.runs() if is_done(spec, r) and (r.dir / RUN_STORE).is_file()]
    if not done:
        return Collected(0, 0)
    db = Store(spec.store)
    return Collected(len(done), sum(db.merge_from(r.dir / RUN_STORE) for r in done))
