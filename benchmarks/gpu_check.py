"""The prepared GPU check (issue 20): every CUDA path of lmfn-bench run once, in one short script.

    python benchmarks/gpu_check.py OUT [--data-root D] [--weights-dir W] [--budget-s 480]   (or: nox -s gpu -- OUT)

On a CUDA machine, in about 8 minutes (steps that would pass ``--budget-s`` are skipped and say so):
1. the device, driver, torch / CUDA / cuDNN versions;
2. latency (batch 1, 1280x720 output, warm-up, CUDA events, median / p90) and peak memory of every zoo model
   with official weights plus LMFN, fp32 and fp16 (bf16 where fp16 is unsupported), and channels_last and
   torch.compile for LKDN and LMFN;
3. PSNR/SSIM of the official-weight baselines (and of the checkpoint step 4 trains) on Set5 and Set14 (the
   embedded Default set without a data root) on the GPU, against the same evaluation on this machine's CPU
   (or the rows of ``--cpu-store``): fp32 differences must stay within 0.01 dB;
4. LMFN with the paper recipe (batch 64 of 48x48, Adan, EMA) for ~2 minutes: iterations per second and the
   projected wall time of its 2e6 iterations; the same under torchrun for 1-process DDP over nccl;
5. everything into ``OUT/results.db`` (a results store: merge it into a CPU one with ``lmfn-bench store merge``)
   and ``OUT/summary.json``, then the report with the GPU latency column in ``OUT/report``.
Without CUDA it says so and runs every step at toy size on the CPU (its own plumbing: bf16 for the half
precision, gloo for DDP, no compile), then exits 0; CI runs it that way. Any failed step: exit 1.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from harness import tasks, zoo
from harness.data import available_datasets
from harness.paths import shared_dir
from harness.store import Store
from harness.train import MODEL_FILE, TrainConfig, train

PSNR_TOLERANCE = 0.01  # dB, fp32 GPU vs CPU: cuDNN picks other conv algorithms, sums round differently
PAPER_ITERS = 2_000_000
FOCUS = ("lkdn", "lmfn")  # channels_last / torch.compile are tried on these two


@dataclass(frozen=True)
class Plan:
    """What one run does: full size on a GPU, toy size for the CPU plumbing check."""

    device: str
    half: str  # fp16, or bf16 where fp16 is unsupported
    latency_size: tuple[int, int] | None  # None: the 1280x720 output protocol
    runs: int | None  # None: the harness default for the device
    compile: bool
    train_profile: str
    train_overrides: dict = field(default_factory=dict)
    train_minutes: float = 2.0
    ddp_minutes: float = 1.0

    @property
    def plumbing(self) -> bool:
        return self.device == "cpu"


def make_plan() -> Plan:
    if torch.cuda.is_available():
        half = "fp16" if torch.cuda.get_device_capability()[0] >= 6 else "bf16"
        return Plan("cuda", half, None, None, compile=True, train_profile="paper")
    smoke = {"iters": 6, "batch_size": 2, "patch_size": 16, "ckpt_every": 3, "log_every": 1}
    return Plan("cpu", "bf16", (24, 24), 2, compile=False, train_profile="smoke", train_overrides=smoke,
                train_minutes=0.5, ddp_minutes=0.5)  # fmt: skip


def environment(plan: Plan) -> dict:
    """Device, driver and library versions (what makes a latency figure comparable)."""
    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "device": plan.device, "threads": torch.get_num_threads()}  # fmt: skip
    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env |= {"device_name": props.name, "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1), "driver": _driver()}  # fmt: skip
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


def _driver() -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def latency_models(plan: Plan) -> list[str]:
    """Every zoo model with an official x4 checkpoint, plus LMFN (latency needs no weights); the plumbing
    check takes LKDN and LMFN only (every path, two models: CI time)."""
    if plan.plumbing:
        return list(FOCUS)
    return [*(n for n, s in zoo.registry().items() if 4 in s.checkpoints), "lmfn"]


def latency_configs(plan: Plan, model: str) -> list[dict]:
    """(dtype, channels_last, compile) to time for one model; FLOPs are counted once, on the fp32 run."""
    configs = [{"dtype": "fp32", "flops": True}, {"dtype": plan.half, "flops": False}]
    if model in FOCUS:
        configs.append({"dtype": "fp32", "channels_last": True, "flops": False})
        if plan.compile:
            configs.append({"dtype": "fp32", "compile": True, "flops": False})
    return configs


def latency_step(plan: Plan, store: Path) -> list[dict]:
    out = []
    for model in latency_models(plan):
        for cfg in latency_configs(plan, model):
            opts = tasks.ProfileOptions(device=plan.device, latency_size=plan.latency_size, runs=plan.runs,
                                        warmup=1 if plan.plumbing else None, thop=False, **cfg)  # fmt: skip
            rows = tasks.profile_matrix([tasks.Job(model, 4)], opts, store=store, force=True).rows
            m = rows[0]["metrics"]
            out.append({"model": model, **{k: cfg.get(k, False) for k in ("dtype", "channels_last", "compile")},
                        "median_ms": m["latency_ms_median"], "p90_ms": m.get("latency_ms_p90"),
                        "peak_mem_mb": m.get("peak_mem_mb"), "lr": [m["latency_lr_h"], m["latency_lr_w"]]})  # fmt: skip
            print(f"  {model:14s} {out[-1]['dtype']:5s} cl={cfg.get('channels_last', False)!s:5s} "
                  f"compile={cfg.get('compile', False)!s:5s} {out[-1]['median_ms']:9.2f} ms", flush=True)  # fmt: skip
    return out


def train_step(plan: Plan, out: Path, store: Path) -> dict:
    """LMFN, the paper's recipe, for a fixed wall time: steady-state it/s from the run's own log."""
    run = out / "train-lmfn"
    full = {"iters": PAPER_ITERS, "ckpt_every": 10**9, "log_every": 20}  # a budget in minutes, not iters
    overrides = {**(plan.train_overrides if plan.plumbing else full), "max_minutes": plan.train_minutes}
    cfg = TrainConfig.from_profile(
        "lmfn", plan.train_profile, out=str(run), val_every=0, device=plan.device, store=str(store), **overrides
    )
    res = train(cfg, overwrite=True, echo=lambda s: None)
    rate = steady_rate(run / "log.jsonl")
    return {"iterations": res.iteration, "seconds": res.seconds, "it_per_s": rate, "batch": cfg.batch_size,
            "patch": cfg.patch_size, "projected_paper_hours": PAPER_ITERS / rate / 3600 if rate else None,
            "checkpoint": str(run / MODEL_FILE)}  # fmt: skip


def steady_rate(log: Path) -> float | None:
    """Iterations per second between the first and last step records after the first 20% (warm-up, cuDNN
    autotuning and the first batches are not the steady state)."""
    steps = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("event") == "step"]
    steps = steps[len(steps) // 5 :]
    if len(steps) < 2 or steps[-1]["elapsed"] <= steps[0]["elapsed"]:
        return None
    return (steps[-1]["iter"] - steps[0]["iter"]) / (steps[-1]["elapsed"] - steps[0]["elapsed"])


def ddp_step(plan: Plan, out: Path) -> dict:
    """The same recipe under torchrun, one process (nccl on CUDA, gloo on CPU)."""
    run = out / "train-lmfn-ddp"
    sets = [f"{k}={v}" for k, v in plan.train_overrides.items()]
    sets += [f"max_minutes={plan.ddp_minutes}", "val_every=0"]
    if not plan.plumbing:
        sets += [f"iters={PAPER_ITERS}", f"ckpt_every={10**9}", "log_every=20"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "harness.cli.train", "--variant", "lmfn", "--profile", plan.train_profile, "--out", str(run),
           "--device", plan.device, "--overwrite", "--no-store", *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=plan.ddp_minutes * 60 + 180)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    start = next(r for r in log if r.get("event") == "start")  # what the run itself says it ran under
    rate = steady_rate(run / "log.jsonl")
    return {"backend": start.get("ddp_backend"), "world_size": start["world_size"], "it_per_s": rate,
            "projected_paper_hours": PAPER_ITERS / rate / 3600 if rate else None}  # fmt: skip


def eval_jobs(plan: Plan, weights_dir: Path | None, trained: str | None) -> list[tasks.Job]:
    """The official-weight models (when there are weights) and the checkpoint the train step wrote."""
    jobs = [tasks.Job(n, 4) for n in latency_models(plan) if n != "lmfn"] if weights_dir else []
    return [*jobs, tasks.Job("lmfn", 4, Path(trained))] if trained else jobs


def eval_step(plan: Plan, args: argparse.Namespace, store: Path, trained: str | None) -> list[dict]:
    """PSNR on the GPU vs on the CPU (this machine, or ``--cpu-store``) for the same checkpoints."""
    wanted = ("Set5",) if plan.plumbing else ("Set5", "Set14")
    sets = [s for s in wanted if s in available_datasets(args.data_root)] or ["Default"]
    jobs = eval_jobs(plan, args.weights_dir, trained)
    common = {"data_root": args.data_root, "weights_dir": args.weights_dir, "missing_ok": True, "force": True}
    gpu = tasks.evaluate_matrix(jobs, sets, device=plan.device, store=store, **common).rows
    cpu_store = args.cpu_store or store.with_name("cpu-reference.db")
    cpu = {_key(r): r for r in Store(cpu_store, readonly=True).rows()} if args.cpu_store else {}
    missing = [j for j in jobs if not any(k[:2] == (zoo.get_spec(j.model).name, 4) for k in cpu)]
    if missing:
        fresh = tasks.evaluate_matrix(missing, sets, device="cpu", store=cpu_store, **common).rows
        cpu |= {_key(r): r for r in fresh}
    out = []
    for r in gpu:
        ref = cpu.get(_key(r))
        diff = abs(r["psnr"] - ref["psnr"]) if ref else None
        out.append({"model": r["model"], "dataset": r["dataset"], "psnr_gpu": r["psnr"],
                    "psnr_cpu": ref["psnr"] if ref else None, "abs_diff_db": diff,
                    "ok": diff is not None and diff <= PSNR_TOLERANCE})  # fmt: skip
        print(f"  {r['model']:14s} {r['dataset']:8s} {plan.device} {r['psnr']:.4f} cpu "
              f"{ref['psnr'] if ref else float('nan'):.4f}", flush=True)  # fmt: skip
    if bad := [f"{o['model']} {o['dataset']}" for o in out if not o["ok"]]:
        raise RuntimeError(f"GPU vs CPU PSNR differs by more than {PSNR_TOLERANCE} dB (or no CPU row): {bad}")
    return out


def _key(row: dict) -> tuple:
    return (row["model"], row["scale"], row["dataset"], row["protocol"], row["checkpoint_hash"])


def report_step(store: Path, out: Path) -> list[str]:
    from reports.inputs import load_report, report_folder, save_report

    rep = load_report(store, "Set5", 4)
    return [str(p) for p in save_report(rep, report_folder(out / "report"), ("html", "latex", "markdown"))]


# ----------------------------------------------------------------------------------------------------------
# the run: each step timed, a failed step recorded (the others still run), a step past the budget skipped


class Steps:
    def __init__(self, budget_s: float, summary: dict) -> None:
        self.t0, self.budget_s, self.summary, self.failed = time.perf_counter(), budget_s, summary, []

    def run(self, name: str, fn: Callable[[], object], needs_s: float = 0.0) -> object:
        left = self.budget_s - (time.perf_counter() - self.t0)
        if left < needs_s:
            self.summary["steps"][name] = {"status": "skipped", "why": f"{left:.0f} s left of the budget, needs ~{needs_s:.0f}"}
            print(f"[{name}] skipped: {left:.0f} s of the budget left", flush=True)
            return None
        print(f"[{name}]", flush=True)
        t = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # a step's failure is reported with the rest, not a lost run
            self.failed.append(name)
            self.summary["steps"][name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            print(f"[{name}] FAILED: {type(exc).__name__}: {exc}", flush=True)
            return None
        self.summary["steps"][name] = {"status": "ok", "seconds": round(time.perf_counter() - t, 1)}
        self.summary[name] = value
        return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder for results.db, summary.json and the report (e.g. $OUT)")
    ap.add_argument("--data-root", type=Path, default=None, help="benchmark sets (default: ../shared/data if there)")
    ap.add_argument("--weights-dir", type=Path, default=None, help="official checkpoints (default: ../shared/weights)")
    ap.add_argument("--cpu-store", type=Path, default=None, help="CPU eval rows to compare with (default: measure here)")
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall-time budget; later steps are skipped past it")
    args = ap.parse_args(argv)
    shared = shared_dir()
    for name, sub in (("data_root", "data"), ("weights_dir", "weights")):
        if getattr(args, name) is None and shared is not None and (shared / sub).is_dir():
            setattr(args, name, shared / sub)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan()
    if plan.plumbing:
        print("no CUDA device here (torch.cuda.is_available() is False): checking the script's plumbing on the "
              "CPU at toy size; no GPU figure is measured", flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "results.db"
    summary: dict = {"plan": asdict(plan), "plumbing_only": plan.plumbing, "steps": {}}
    steps = Steps(args.budget_s, summary)
    steps.run("environment", lambda: environment(plan))
    steps.run("latency", lambda: latency_step(plan, store))
    trained = steps.run("train", lambda: train_step(plan, args.out, store), needs_s=60 * plan.train_minutes + 30)
    steps.run("ddp", lambda: ddp_step(plan, args.out), needs_s=60 * plan.ddp_minutes + 40)
    checkpoint = trained["checkpoint"] if trained else None
    steps.run("eval", lambda: eval_step(plan, args, store, checkpoint), needs_s=20)
    steps.run("report", lambda: report_step(store, args.out))
    summary["seconds"] = round(time.perf_counter() - steps.t0, 1)
    summary["failed"] = steps.failed
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print(f"summary: {args.out / 'summary.json'} ({summary['seconds']} s; failed: {steps.failed or 'none'})")
    return 1 if steps.failed else 0


if __name__ == "__main__":
    sys.exit(main())
