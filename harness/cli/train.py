"""``lmfn-bench train``: parse, call :func:`harness.train.train`, print (main.py registers ``command``).

Also runnable on its own, which is how ``torchrun`` starts it on every process::

    torchrun --nproc_per_node 4 -m harness.cli.train --variant lka-msm-ifm --profile paper ...

The common knobs are flags; the rest of :class:`harness.train.TrainConfig` (``ema``, ``log_every``,
``distill_lr``, ``betas``, ...) comes from ``--config recipe.toml`` and ``--set key=value``. Precedence:
profile < recipe file < ``--set`` < flags.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from harness.cli.common import DataRootOpt, JsonOpt, echo, friendly_errors, progress
from harness.errors import UsageError
from harness.settings import DEFAULT_STORE
from harness.train import (
    MODEL_FILE,
    PROFILES,
    TrainConfig,
    TrainResult,
    layered_config,
    load_recipe,
    parse_sets,
)
from harness.train import train as run_training


def _opt(tp: Any, help: str, *names: str, metavar: str | None = None) -> Any:
    """``Annotated[tp, typer.Option(*names, help=help)]``: one line per option below."""
    return Annotated[tp, typer.Option(*names, help=help, metavar=metavar)]


# the options, in --help order (None: not given, so a recipe, --set or the profile decides)
VariantOpt = _opt(
    str | None,
    "Zoo model / LMFN variant, e.g. lka-msm-ifm, lmfn, lkdn (default lmfn; with --init and no --model: "
    "the network --init holds, read off its weights).",
    "--variant",
    "--model",
    "-m",
)
ScaleOpt = _opt(int | None, "Upscaling factor: 2, 3 or 4 (default 4).", "--scale", "-s")
ProfileOpt = _opt(
    str | None,
    f"Recipe: {' | '.join(PROFILES)} (paper = LMFN's recipe, the default; short = <= 30 min on 2 CPU cores; "
    "smoke = a few steps).",
)
ConfigOpt = _opt(
    Path | None,
    "TOML recipe of TrainConfig fields over the profile (ema = 0.999, log_every = 100, betas = [0.98, 0.92, "
    "0.99], ...).",
    "--config",
    metavar="RECIPE.toml",
)
SetOpt = _opt(
    list[str] | None,
    "key=value for any TrainConfig field, over the profile and --config (e.g. --set ema=0.99); repeatable.",
    "--set",
    metavar="KEY=VALUE",
)
TrainDataOpt = _opt(
    list[str] | None,
    "HR folder or set name under the data root (DF2K, DIV2K, Flickr2K, T91, ...); repeatable. Default: every "
    "training set under the data root, else the embedded default.",
    "--train-data",
)
ItersOpt = _opt(int | None, "Training iterations (profile's by default).")
BatchOpt = _opt(int | None, "Global batch size (split over torchrun processes).")
PatchOpt = _opt(int | None, "LR patch side; the HR patch is patch x scale.")
LrOpt = _opt(float | None, "Learning rate.", "--lr")
ValEveryOpt = _opt(int | None, "Validate the EMA weights every N iterations (0: only at the end).")
ValSetOpt = _opt(
    str | None, "Benchmark set for validation (default Set5 if present, else Default; none: no validation)."
)
FinalEvalOpt = _opt(
    list[str] | None,
    "Set(s) for the final eval rows; repeatable (default: the validation set).",
    "--final-eval",
)
CkptOpt = _opt(int | None, "Write checkpoint + training state every N iterations.")
MinutesOpt = _opt(float | None, "Stop (and finish normally) after this much training time.")
SeedOpt = _opt(int | None, "Seed of weights init and data order.")
WorkersOpt = _opt(int | None, "DataLoader worker processes (0: in the training process).")
OutOpt = _opt(
    Path | None, "Run folder (checkpoints, log.jsonl). Default runs/<model>_x<scale>_<profile>.", "--out"
)
ResumeOpt = _opt(
    bool,
    "Continue the run in --out exactly where its last checkpoint left it; options given now override the saved "
    "ones (e.g. --iters).",
    "--resume",
)
OverwriteOpt = _opt(
    bool, "Start a new run in an --out that already holds one, deleting its model, state and log first.",
    "--overwrite",
)
InitOpt = _opt(
    Path | None, "Warm start: copy every tensor of this checkpoint that matches by name and shape.", "--init"
)
InitDistillOpt = _opt(
    int | None,
    "With --init: first train the blocks it left partly fresh, for N steps, to reproduce the same blocks of "
    "--distill-teacher (fed the teacher's block inputs), then train end to end. 0: off.",
)
TeacherOpt = _opt(
    str | None,
    "Zoo model the --init checkpoint loads into exactly (e.g. lkdn): the teacher of --init-distill and --kd-weight "
    "(default: the network read off the --init weights).",
)
DistillPatchOpt = _opt(
    int | None, "LR patch size of the --init-distill steps (default: --patch-size; at most that)."
)
KdOpt = _opt(
    float | None,
    "Train toward --distill-teacher's output too: loss (1-w) L1(SR, HR) + w L1(SR, teacher SR). 0: off.",
)
WarmupOpt = _opt(int | None, "Linear lr warm-up over N iterations (0, the paper's recipe: constant lr).")
ScheduleOpt = _opt(
    str | None,
    "constant (the paper's) | cosine: anneal the lr to 0 at --iters (a run stopped by --max-minutes stops "
    "wherever it is on the curve).",
)
DeviceOpt = _opt(str | None, "auto | cpu | cuda (under torchrun: one GPU per process).")
DeterministicOpt = _opt(
    bool, "torch.use_deterministic_algorithms (bit-exact reruns; slower on GPU).", "--deterministic"
)
ThreadsOpt = _opt(int | None, "torch CPU threads.")
StoreOpt = _opt(
    Path | None, f"SQLite results store (default {DEFAULT_STORE}; on --resume the run's).", "--store"
)
NoStoreOpt = _opt(bool, "Do not write results to the store.", "--no-store")


class _Rate(ProgressColumn):
    """it/s of the trainer's own window (rich's speed estimate is poor for seconds-long steps)."""

    def render(self, task) -> Text:  # type: ignore[no-untyped-def]
        rate = task.fields.get("rate") or 0.0
        psnr = task.fields.get("psnr")
        extra = f"  val {psnr:.2f} dB" if psnr else ""
        return Text(f"{rate:.2f} it/s  loss {task.fields.get('loss', 0.0):.4f}{extra}")


@contextmanager
def _bars(cfg: TrainConfig) -> Iterator[tuple[Callable, Callable]]:
    """(on_data, on_step) callbacks driving one bar per phase: data -> [distill ->] train."""
    with progress(_Rate(), TextColumn("ETA"), TimeRemainingColumn()) as prog:
        yield _callbacks(prog, cfg)


def _callbacks(prog: Progress, cfg: TrainConfig) -> tuple[Callable, Callable]:
    task, phase = prog.add_task("preparing training data", total=None), "data"

    def on_data(k: int, n: int, _name: str) -> None:
        prog.update(task, completed=k, total=n)

    def on_step(it: int, total: int, info: dict) -> None:
        nonlocal task, phase
        if info.get("phase", "train") != phase:
            phase = info.get("phase", "train")
            prog.remove_task(task)
            what = "distilling fresh blocks" if phase == "distill" else f"[{cfg.profile}]"
            task = prog.add_task(f"{cfg.model} x{cfg.scale} {what}", total=total, completed=it - 1)
        fields = {"rate": info.get("it_per_s"), "loss": info.get("loss") or 0.0, "psnr": info.get("psnr")}
        prog.update(task, completed=it, **fields)

    return on_data, on_step


def _print_result(res: TrainResult, json_out: bool) -> None:
    if not json_out:
        minutes = res.seconds / 60
        echo(
            f"{res.reason}: iteration {res.iteration} in {minutes:.1f} min; weights in {res.out / MODEL_FILE}"
        )
        return
    summary = {
        "out": str(res.out),
        "iteration": res.iteration,
        "reason": res.reason,
        "minutes": round(res.seconds / 60, 2),
        "curve": res.curve,
        "final": [{k: r[k] for k in ("dataset", "psnr", "ssim")} for r in res.final],
    }
    print(json.dumps(summary), flush=True)  # plain print: a rich console would wrap the line


def _text(path: Path | None) -> str | None:
    return str(path) if path else None


def _config(
    flags: dict[str, Any], config: Path | None, sets: list[str] | None, resume: Path | None
) -> TrainConfig:
    """The run's config: profile (or the resumed run's) < --config < --set < flags. A new run writes to the
    default store unless told otherwise; a resumed one keeps its own. (--resume with --init is refused by
    the library's train(), for every caller.)"""
    defaults = {"device": "auto"} if resume else {"store": DEFAULT_STORE}
    recipe = load_recipe(config) if config else {}
    return layered_config(flags, recipe, parse_sets(sets or []), defaults=defaults, resume=resume)


@friendly_errors
def command(
    variant: VariantOpt = None,
    scale: ScaleOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    train_data: TrainDataOpt = None,
    data_root: DataRootOpt = None,
    iters: ItersOpt = None,
    batch_size: BatchOpt = None,
    patch_size: PatchOpt = None,
    lr: LrOpt = None,
    val_every: ValEveryOpt = None,
    val_dataset: ValSetOpt = None,
    final_eval: FinalEvalOpt = None,
    ckpt_every: CkptOpt = None,
    max_minutes: MinutesOpt = None,
    seed: SeedOpt = None,
    workers: WorkersOpt = None,
    out_dir: OutOpt = None,
    resume: ResumeOpt = False,
    overwrite: OverwriteOpt = False,
    init: InitOpt = None,
    init_distill: InitDistillOpt = None,
    distill_teacher: TeacherOpt = None,
    distill_patch_size: DistillPatchOpt = None,
    kd_weight: KdOpt = None,
    warmup_iters: WarmupOpt = None,
    lr_schedule: ScheduleOpt = None,
    device: DeviceOpt = None,
    deterministic: DeterministicOpt = False,
    threads: ThreadsOpt = None,
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Train a zoo model (LMFN variants, baselines) with the paper's recipe or a smaller profile."""
    if resume and out_dir is None:
        raise UsageError("--resume needs --out DIR (the run folder to continue)")
    # fmt: off
    flags: dict[str, Any] = dict(
        model=variant, scale=scale, profile=profile, iters=iters, batch_size=batch_size, patch_size=patch_size,
        lr=lr, val_every=val_every, val_dataset=val_dataset, final_eval=final_eval or None,
        ckpt_every=ckpt_every, max_minutes=max_minutes, seed=seed, workers=workers, init_distill=init_distill,
        distill_teacher=distill_teacher, distill_patch_size=distill_patch_size, kd_weight=kd_weight,
        warmup_iters=warmup_iters, lr_schedule=lr_schedule, device=device, deterministic=deterministic or None,
        threads=threads, train_data=train_data or None, data_root=_text(data_root), out=_text(out_dir),
        init=_text(init), store="" if no_store else _text(store),
    )
    # fmt: on
    cfg = _config(flags, config, sets, out_dir if resume else None)
    with _bars(cfg) as (on_data, on_step):
        res = run_training(cfg, resume=resume, overwrite=overwrite, echo=echo, on_step=on_step, on_data=on_data)
    _print_result(res, json_out)
    if res.reason == "signal":
        raise typer.Exit(130)


def main() -> None:  # pragma: no cover - `python -m harness.cli.train` / torchrun entry
    typer.run(command)


if __name__ == "__main__":  # pragma: no cover
    main()
