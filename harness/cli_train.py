"""``lmfn-bench train``: the CLI of :mod:`harness.train` (cli.py registers it as ``app.command("train")``).

Also runnable on its own, which is how ``torchrun`` starts it on every process::

    torchrun --nproc_per_node 4 -m harness.cli_train --variant lka-msm-ifm --profile paper ...
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from harness.store import DEFAULT_STORE
from harness.train import PROFILES, NonFiniteLossError, TrainConfig, resume_config, train
from harness.train_data import resolve_sources


class _Rate(ProgressColumn):
    """it/s of the trainer's own window (rich's speed estimate is poor for seconds-long steps)."""

    def render(self, task) -> Text:  # type: ignore[no-untyped-def]
        rate = task.fields.get("rate") or 0.0
        psnr = task.fields.get("psnr")
        extra = f"  val {psnr:.2f} dB" if psnr else ""
        return Text(f"{rate:.2f} it/s  loss {task.fields.get('loss', 0.0):.4f}{extra}")


def _train_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=cli.err,
        transient=True,
        disable=not cli.err.is_terminal,
    )


def _friendly(fn):  # type: ignore[no-untyped-def]
    """cli.friendly_errors, looked up when called (see the import note)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return cli.friendly_errors(fn)(*args, **kwargs)

    return wrapper


@_friendly
def train_command(
    variant: Annotated[
        str,
        typer.Option(
            "--variant", "--model", "-m", help="Zoo model / LMFN variant, e.g. lka-msm-ifm, lmfn, lkdn."
        ),
    ] = "lmfn",
    scale: Annotated[int, typer.Option("--scale", "-s", help="Upscaling factor: 2, 3 or 4.")] = 4,
    profile: Annotated[
        str,
        typer.Option(
            help=f"Recipe: {' | '.join(PROFILES)} (paper = LMFN's recipe; short = <= 30 min on 2 CPU cores; "
            "smoke = a few steps)."
        ),
    ] = "paper",
    train_data: Annotated[
        list[str] | None,
        typer.Option(
            "--train-data",
            help="HR folder or set name under the data root (DF2K, DIV2K, Flickr2K, T91, ...); repeatable. "
            "Default: every training set under the data root, else the embedded default.",
        ),
    ] = None,
    data_root: cli.DataRootOpt = None,
    iters: Annotated[int | None, typer.Option(help="Training iterations (profile's by default).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Global batch size (split over torchrun processes).")
    ] = None,
    patch_size: Annotated[
        int | None, typer.Option(help="LR patch side; the HR patch is patch x scale.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (constant).")] = None,
    ema: Annotated[
        float | None, typer.Option(help="EMA decay of the weights that are validated and exported.")
    ] = None,
    val_every: Annotated[
        int | None, typer.Option(help="Validate the EMA weights every N iterations (0: only at the end).")
    ] = None,
    val_dataset: Annotated[
        str | None, typer.Option(help="Benchmark set for validation (default Set5 if present, else Default).")
    ] = None,
    final_eval: Annotated[
        list[str] | None,
        typer.Option(
            "--final-eval", help="Set(s) for the final eval rows; repeatable (default: the validation set)."
        ),
    ] = None,
    ckpt_every: Annotated[
        int | None, typer.Option(help="Write checkpoint + training state every N iterations.")
    ] = None,
    log_every: Annotated[
        int | None, typer.Option(help="Write a log.jsonl step record every N iterations.")
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop (and finish normally) after this much training time.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights init and data order.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="DataLoader worker processes (0: in the training process).")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Run folder (checkpoints, log.jsonl). Default runs/<model>_x<scale>_<profile>."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out exactly where its last checkpoint left it; options given now "
            "override the saved ones (e.g. --iters).",
        ),
    ] = False,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init", help="Warm start: copy every tensor of this checkpoint that matches by name and shape."
        ),
    ] = None,
    init_distill: Annotated[
        int | None,
        typer.Option(
            help="With --init: first train the blocks it left partly fresh, for N steps, to reproduce the same "
            "blocks of --distill-teacher (fed the teacher's block inputs), then train end to end. 0: off.",
        ),
    ] = None,
    distill_teacher: Annotated[
        str | None,
        typer.Option(
            help="Zoo model the --init checkpoint loads into exactly (e.g. lkdn): the teacher of --init-distill "
            "and --kd-weight."
        ),
    ] = None,
    distill_lr: Annotated[float | None, typer.Option(help="Adam lr of the --init-distill steps.")] = None,
    distill_patch_size: Annotated[
        int | None,
        typer.Option(help="LR patch size of the --init-distill steps (default: --patch-size; at most that)."),
    ] = None,
    kd_weight: Annotated[
        float | None,
        typer.Option(
            help="Train toward --distill-teacher's output too: loss (1-w) L1(SR, HR) + w L1(SR, teacher SR). "
            "0: off (the paper's L1)."
        ),
    ] = None,
    warmup_iters: Annotated[
        int | None,
        typer.Option(help="Linear lr warm-up over N iterations (0, the paper's recipe: constant lr)."),
    ] = None,
    lr_schedule: Annotated[
        str | None,
        typer.Option(
            help="constant (the paper's) | cosine: anneal the lr to 0 at --iters (a run stopped by "
            "--max-minutes stops wherever it is on the curve)."
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="auto | cpu | cuda (under torchrun: one GPU per process).")
    ] = "auto",
    deterministic: Annotated[
        bool, typer.Option(help="torch.use_deterministic_algorithms (bit-exact reruns; slower on GPU).")
    ] = False,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store", help=f"SQLite results store (default {DEFAULT_STORE}; on --resume the run's)."
        ),
    ] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Do not write results to the store.")] = False,
    json_out: cli.JsonOpt = False,
) -> None:
    """Train a zoo model (LMFN variants, baselines) with the paper's recipe or a smaller profile."""
    if scale not in (2, 3, 4):
        raise ValueError(f"scale must be one of 2, 3, 4, got {scale}")
    overrides = dict(
        iters=iters,
        batch_size=batch_size,
        patch_size=patch_size,
        lr=lr,
        ema=ema,
        val_every=val_every,
        val_dataset=val_dataset,
        final_eval=final_eval or None,
        ckpt_every=ckpt_every,
        log_every=log_every,
        max_minutes=max_minutes,
        init_distill=init_distill,
        distill_teacher=distill_teacher,
        distill_lr=distill_lr,
        kd_weight=kd_weight,
        distill_patch_size=distill_patch_size,
        warmup_iters=warmup_iters,
        lr_schedule=lr_schedule,
        seed=seed,
        workers=workers,
        device=device,
        deterministic=deterministic or None,
        threads=threads,
        store=str(store) if store else None,
        data_root=str(data_root) if data_root else None,
        train_data=resolve_sources(train_data, data_root) if train_data else None,
    )
    if no_store:
        overrides["store"] = ""
    elif store is None and not resume:
        overrides["store"] = DEFAULT_STORE
    if resume:
        if out_dir is None:
            raise ValueError("--resume needs --out DIR (the run folder to continue)")
        if init is not None:
            raise ValueError("--resume continues a run; --init starts a new one: give only one of them")
        cfg = resume_config(out_dir, **overrides)
    else:
        overrides["train_data"] = overrides["train_data"] or resolve_sources(None, data_root)
        cfg = TrainConfig.from_profile(
            variant,
            profile,
            scale=scale,
            out=str(out_dir) if out_dir else None,
            init=str(init) if init else None,
            **overrides,
        )
    with _train_progress() as prog:
        data_task = prog.add_task("preparing training data", total=None)

        def on_data(k: int, n: int, _name: str) -> None:
            prog.update(data_task, completed=k, total=n)

        task, phase = data_task, "data"

        def on_step(it: int, total: int, info: dict) -> None:
            nonlocal task, phase
            if info.get("phase", "train") != phase:  # data -> [distill ->] train: one bar each
                phase = info.get("phase", "train")
                prog.remove_task(task)
                what = "distilling fresh blocks" if phase == "distill" else f"[{cfg.profile}]"
                task = prog.add_task(f"{cfg.model} x{cfg.scale} {what}", total=total, completed=it - 1)
            prog.update(
                task,
                completed=it,
                rate=info.get("it_per_s"),
                loss=info.get("loss") or 0.0,
                psnr=info.get("psnr"),
            )

        try:
            res = train(
                cfg,
                resume=resume,
                echo=lambda m: cli.err.print(m, highlight=False, soft_wrap=True),
                on_step=on_step,
                on_data=on_data,
            )
        except NonFiniteLossError as e:
            cli.err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(3) from None
    summary = {
        "out": str(res.out),
        "iteration": res.iteration,
        "reason": res.reason,
        "minutes": round(res.seconds / 60, 2),
        "curve": res.curve,
        "final": [{k: r[k] for k in ("dataset", "psnr", "ssim")} for r in res.final],
    }
    if json_out:
        print(json.dumps(summary), flush=True)
    else:
        cli.err.print(
            f"{res.reason}: iteration {res.iteration} in {res.seconds / 60:.1f} min; weights in "
            f"{res.out / 'net_g_latest.pth'}",
            highlight=False,
        )
    if res.reason == "signal":
        raise typer.Exit(130)


# imported last and used only at call time: cli.py imports train_command from this module at its own end
import harness.cli as cli  # noqa: E402


def main() -> None:  # pragma: no cover - `python -m harness.cli_train` / torchrun entry
    typer.run(train_command)


if __name__ == "__main__":  # pragma: no cover
    main()
