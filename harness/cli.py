"""``lmfn-bench``: the command line of the harness."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.checkpoint import CheckpointMismatchError
from harness.data import DataError, available_datasets, canonical_dataset
from harness.metrics import PROTOCOLS
from harness.runner import MissingCheckpointError, run_eval
from harness.store import DEFAULT_STORE, Store
from harness.zoo import SCALES, UnknownModelError, get_spec, registry

app = typer.Typer(
    help="Benchmark and ablation harness for efficient single-image super-resolution, built around LMFN.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
store_app = typer.Typer(help="Manage results stores.", no_args_is_help=True)
app.add_typer(store_app, name="store")

out = Console()
err = Console(stderr=True)

_EXPECTED = (
    DataError,
    UnknownModelError,
    CheckpointMismatchError,
    MissingCheckpointError,
    FileNotFoundError,
    ValueError,
)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expected failures become one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _EXPECTED as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted; results written so far are kept")
            raise typer.Exit(130) from None

    return wrapper


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


DataRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-root",
        envvar="LMFN_BENCH_DATA",
        help="Folder with benchmark/<Set5|Set14|B100|Urban100|Manga109>/HR. Without it, the embedded "
        "Default set (scikit-image photos) is used.",
    ),
]
StoreOpt = Annotated[Path, typer.Option("--store", help="SQLite results store.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object per result instead of a table.")]


def _check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    return scale


@app.command()
@friendly_errors
def models(
    details: Annotated[
        bool, typer.Option("--details", help="Also build each model and count its params at x2/x3/x4.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """List the model zoo."""
    rows = []
    for spec in registry().values():
        row = {
            "model": spec.name,
            "family": spec.family,
            "scales": list(spec.scales),
            "paper": spec.paper,
            "checkpoints": {str(k): v for k, v in spec.checkpoints.items()},
        }
        if details:
            row["params"] = {
                str(s): sum(p.numel() for p in spec.builder(s).parameters()) for s in spec.scales
            }
        rows.append(row)
    if json_out:
        for r in rows:
            print(json.dumps(r))
        return
    table = Table(title="lmfn-bench model zoo")
    table.add_column("model", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("scales", no_wrap=True)
    if details:
        for s in SCALES:
            table.add_column(f"params x{s}", justify="right", no_wrap=True)
    else:
        table.add_column("official checkpoints (found by --weights-dir)")
    for r in rows:
        cells = [r["model"], r["family"], ",".join(map(str, r["scales"]))]
        if not details:
            cells.append(" ".join(r["checkpoints"].values()) or "-")
        if details:
            cells += [f"{r['params'][str(s)]:,}" if str(s) in r["params"] else "-" for s in SCALES]
        table.add_row(*cells)
    out.print(table)


def _print_results(rows: list[dict], json_out: bool) -> None:
    if json_out:
        keys = (
            "model",
            "variant",
            "scale",
            "dataset",
            "protocol",
            "psnr",
            "ssim",
            "n_images",
            "source",
            "checkpoint",
            "checkpoint_hash",
            "code_rev",
            "device",
            "versions",
            "created_at",
            "uid",
        )
        for r in rows:
            print(json.dumps({k: r.get(k) for k in keys}), flush=True)
        return
    table = Table()
    for col in ("model", "scale", "dataset", "protocol", "PSNR", "SSIM", "images", "checkpoint"):
        table.add_column(col, justify="right" if col in ("PSNR", "SSIM", "images", "scale") else "left")
    for r in rows:
        table.add_row(
            r["model"],
            f"x{r['scale']}",
            r["dataset"],
            r["protocol"],
            f"{r['psnr']:.3f}",
            f"{r['ssim']:.4f}",
            str(r["n_images"]),
            Path(r["checkpoint"]).name or "-",
        )
    out.print(table)


OnlyOpt = Annotated[
    list[str] | None, typer.Option("--only", hidden=True, help="Restrict --all to these models.")
]


def _all_jobs(scales: list[int], only: list[str] | None) -> list[tuple[str, int]]:
    """(model, scale) pairs of --all: every zoo model (or those in ``only``) at every scale it has."""
    keep = {get_spec(n).name for n in only} if only else None
    return [
        (n, s)
        for n, sp in registry().items()
        for s in sp.scales
        if (not scales or s in scales) and (keep is None or n in keep)
    ]


def _parse_shard(shard: str | None) -> tuple[int, int]:
    if shard is None:
        return 0, 1
    try:
        i, n = (int(v) for v in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got '{shard}'") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard i/n needs 0 <= i < n, got '{shard}'")
    return i, n


@app.command("eval")
@friendly_errors
def eval_cmd(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Zoo name (see `models`) or module.path:factory.")
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", "-d", help="Benchmark set(s); default: all available.")
    ] = None,
    scale: Annotated[
        list[int] | None,
        typer.Option(
            "--scale", "-s", help="Upscaling factor(s): 2, 3, 4. Default 4; with --all every scale."
        ),
    ] = None,
    data_root: DataRootOpt = None,
    protocol: Annotated[
        str, typer.Option(help=f"Evaluation protocol: {' | '.join(PROTOCOLS)} (see DESIGN.md).")
    ] = "basicsr",
    checkpoint: Annotated[Path | None, typer.Option(help="Weights file to load (strict).")] = None,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Folder searched (recursively) for official checkpoints by file name.")
    ] = None,
    all_models: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every zoo model x scale x available dataset; models without a checkpoint are listed, not evaluated.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option(help="With --all: re-measure results the store already has.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="With --all: run only share i of n (i/n), to split the matrix over machines."),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
    store: StoreOpt = Path(DEFAULT_STORE),
    json_out: JsonOpt = False,
    only: OnlyOpt = None,
) -> None:
    """Measure PSNR / SSIM (Y channel) on benchmark sets and write them to the results store."""
    from harness.runner import prepare

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}'; choose one of {', '.join(PROTOCOLS)}")
    scales = [_check_scale(s) for s in scale] if scale else ([] if all_models else [4])
    sets = [canonical_dataset(d) for d in dataset] if dataset else available_datasets(data_root)
    if not sets:
        raise DataError(f"no benchmark sets with images under {data_root}")
    if all_models:
        if model or checkpoint:
            raise ValueError("--all evaluates the whole zoo; drop --model / --checkpoint")
        jobs = _all_jobs(scales, only)
    else:
        if model is None:
            raise ValueError("give --model NAME (or --all); `lmfn-bench models` lists the zoo")
        spec = get_spec(model)  # unknown names fail here, before any data is read
        for s in scales:
            if s not in spec.scales:
                raise ValueError(
                    f"model '{spec.name}' has no x{s} configuration (scales: {list(spec.scales)})"
                )
        jobs = [(model, s) for s in scales]
    i, n = _parse_shard(shard)
    jobs = jobs[i::n]

    db: Store | None = None  # opened at the first result, so a run that fails early writes nothing
    rows, skipped, no_ckpt = [], 0, []
    with _progress() as prog:
        overall = prog.add_task("models", total=len(jobs)) if all_models else None
        for name, s in jobs:
            try:
                prep = prepare(name, s, checkpoint, weights_dir)
            except MissingCheckpointError:
                if not all_models:
                    raise
                no_ckpt.append(f"{name} x{s}")
                prog.advance(overall)
                continue
            for ds in sets:
                if (
                    all_models
                    and not force
                    and Path(store).is_file()
                    and Store(store).has(
                        kind="eval",
                        model=prep.spec.name,
                        scale=s,
                        dataset=ds,
                        protocol=protocol,
                        checkpoint_hash=prep.checkpoint_hash,
                    )
                ):
                    skipped += 1
                    continue
                task = prog.add_task(f"{prep.spec.name} x{s} {ds}", total=None)

                def tick(k: int, total: int, _name: str, task: int = task) -> None:
                    prog.update(task, completed=k, total=total)

                row = run_eval(
                    prep.spec.name, s, ds, data_root, protocol, device=device, on_image=tick, prepared=prep
                )
                db = db or Store(store)
                rows.append(db.add(row))
                prog.remove_task(task)
                if json_out:
                    _print_results(rows[-1:], json_out=True)
            if overall is not None:
                prog.advance(overall)
    if not json_out:
        _print_results(rows, json_out=False)
    if skipped:
        err.print(f"{skipped} result(s) already in {store} were skipped (use --force to re-measure)")
    if no_ckpt:
        err.print(f"not evaluated, no checkpoint found in {weights_dir}: {', '.join(no_ckpt)}")


def _parse_size(size: str | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"sizes look like HxW (e.g. 180x320), got '{size}'") from None
    if h < 1 or w < 1:
        raise ValueError(f"sizes must be positive, got '{size}'")
    return h, w


@app.command()
@friendly_errors
def profile(
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Zoo name(s) or module.path:factory.")
    ] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Every zoo model at every scale it has.")] = False,
    scale: Annotated[
        list[int] | None, typer.Option("--scale", "-s", help="Scale(s); default 4, with --all every scale.")
    ] = None,
    ntire: Annotated[
        bool,
        typer.Option(help="NTIRE mode: FLOPs and latency for a 256x256 LR input instead of 1280x720 output."),
    ] = False,
    latency: Annotated[bool, typer.Option(help="Also time the forward pass.")] = True,
    latency_size: Annotated[
        str | None, typer.Option(help="LR size HxW for latency (default: the FLOPs input size).")
    ] = None,
    device: Annotated[
        str, typer.Option(help="cpu or cuda[:i]; CUDA times with CUDA events and records peak memory.")
    ] = "cpu",
    dtype: Annotated[str, typer.Option(help="fp32 | bf16 | fp16 (fp16 needs CUDA).")] = "fp32",
    runs: Annotated[int | None, typer.Option(help="Timed runs (default 100 on GPU, 10 on CPU).")] = None,
    warmup: Annotated[int | None, typer.Option(help="Warm-up runs (default 20 on GPU, 2 on CPU).")] = None,
    channels_last: Annotated[bool, typer.Option(help="Run in channels_last memory format.")] = False,
    compile_model: Annotated[
        bool, typer.Option("--compile", help="torch.compile the model before timing.")
    ] = False,
    thop: Annotated[bool, typer.Option(help="Cross-check FLOPs with thop.")] = True,
    force: Annotated[bool, typer.Option(help="Re-measure what the store already has.")] = False,
    shard: Annotated[
        str | None, typer.Option(help="Run only share i of n (i/n) of the model x scale matrix.")
    ] = None,
    store: StoreOpt = Path(DEFAULT_STORE),
    json_out: JsonOpt = False,
    only: OnlyOpt = None,
) -> None:
    """Params, FLOPs (multiply-adds: paper / fvcore / full / thop columns), latency and peak memory."""
    from harness.measure import PRECISIONS, profile_model
    from harness.provenance import device_name

    if dtype not in PRECISIONS:
        raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)}, got '{dtype}'")
    scales = [_check_scale(s) for s in scale] if scale else ([] if all_models else [4])
    if all_models:
        jobs = _all_jobs(scales, only)
    elif model:
        jobs = []
        for name in model:
            spec = get_spec(name)
            for s in scales:
                if s not in spec.scales:
                    raise ValueError(
                        f"model '{spec.name}' has no x{s} configuration (scales: {list(spec.scales)})"
                    )
                jobs.append((spec.name if ":" not in name else name, s))
    else:
        raise ValueError("give --model NAME (or --all); `lmfn-bench models` lists the zoo")
    lat_size = _parse_size(latency_size)
    on_gpu = device.startswith("cuda")
    runs = runs if runs is not None else (100 if on_gpu else 10)
    warmup = warmup if warmup is not None else (20 if on_gpu else 2)
    i, n = _parse_shard(shard)
    jobs = jobs[i::n]
    input_tag = "ntire256" if ntire else "hd720"
    dev_key = "|".join(
        [
            input_tag,
            device_name(device) if latency else "no-latency",
            dtype,
            "cl" if channels_last else "",
            "compile" if compile_model else "",
        ]
    )
    db: Store | None = None
    rows, skipped = [], 0
    with _progress() as prog:
        task = prog.add_task("profile", total=len(jobs))
        for name, s in jobs:
            spec = get_spec(name)
            key = {
                "kind": "profile",
                "model": spec.name,
                "scale": s,
                "dataset": input_tag,
                "device_key": dev_key,
            }
            if not force and Path(store).is_file() and Store(store).has(**key):
                skipped += 1
                prog.advance(task)
                continue
            prog.update(task, description=f"profile {spec.name} x{s}")
            metrics = profile_model(
                spec.builder(s),
                s,
                ntire=ntire,
                thop=thop,
                latency=latency,
                latency_size=lat_size,
                device=device,
                dtype=dtype,
                runs=runs,
                warmup=warmup,
                channels_last=channels_last,
                compile=compile_model,
            )
            row = {
                **key,
                "variant": spec.name if spec.family == "lmfn" else "",
                "protocol": "",
                "metrics": metrics,
                "device": device_name(device),
                "extra": {"family": spec.family, "paper": spec.paper},
            }
            db = db or Store(store)
            rows.append(db.add(row))
            if json_out:
                m = rows[-1]["metrics"]
                print(
                    json.dumps(
                        {
                            "model": spec.name,
                            "scale": s,
                            **m,
                            "uid": rows[-1]["uid"],
                            "created_at": rows[-1]["created_at"],
                            "code_rev": rows[-1]["code_rev"],
                        }
                    ),
                    flush=True,
                )
            prog.advance(task)
    if not json_out:
        _print_profile(rows)
    if skipped:
        err.print(f"{skipped} profile(s) already in {store} were skipped (use --force to re-measure)")


def _g(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e9:.2f}"


def _print_profile(rows: list[dict]) -> None:
    table = Table()
    for col in (
        "model",
        "scale",
        "params",
        "FLOPs paper (G)",
        "fvcore",
        "full",
        "thop",
        "latency ms (p50/p90)",
        "uncounted (full)",
    ):
        table.add_column(col, justify="left" if col in ("model", "uncounted (full)") else "right")
    from harness.measure import format_ops

    for r in rows:
        m = r["metrics"]
        lat = f"{m['latency_ms_median']:.1f}/{m['latency_ms_p90']:.1f}" if "latency_ms_median" in m else "-"
        table.add_row(
            r["model"],
            f"x{r['scale']}",
            f"{m['params']:,}",
            _g(m.get("flops_paper")),
            _g(m.get("flops_fvcore")),
            _g(m.get("flops_full")),
            _g(m.get("flops_thop")),
            lat,
            format_ops(m.get("unsupported_full") or {}) or "-",
        )
    out.print(table)


@app.command()
@friendly_errors
def pipeline(
    data_root: DataRootOpt = None,
    weights_dir: Annotated[
        Path | None, typer.Option(help="Official checkpoints of the baselines (found by file name).")
    ] = None,
    scale: Annotated[list[int] | None, typer.Option("--scale", "-s", help="Scale(s); default 4.")] = None,
    train_minutes: Annotated[float, typer.Option(help="Wall-clock budget of LMFN's short training.")] = 5.0,
    latency: Annotated[bool, typer.Option(help="Also time every model (slow on CPU).")] = False,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for the training run and the reports.")
    ] = Path("lmfn-bench-out"),
    store: StoreOpt = Path(DEFAULT_STORE),
    force: Annotated[bool, typer.Option(help="Redo steps whose results the store already has.")] = False,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Evaluate / profile only these models (default: the zoo)."),
    ] = None,
) -> None:
    """The whole job: short-train LMFN, evaluate and profile the zoo, write HTML / LaTeX / Markdown reports.

    Runs on the embedded Default set when no data root is given; steps already in the store are skipped.
    """
    from harness.cli_report import report_command
    from harness.train import TrainConfig, train

    scales = [_check_scale(s) for s in scale] if scale else [4]
    sets = available_datasets(data_root)
    db = Store(store)
    for s in scales:
        # 1. LMFN, short recipe, final EMA eval on every available set (rows: source "trained")
        run = out_dir / "runs" / f"lmfn_x{s}_short"
        if force or not db.has(kind="eval", model="lmfn", scale=s, source="trained"):
            err.print(
                f"[1/4] training LMFN x{s} for up to {train_minutes:g} min (profile short) -> {run}",
                markup=False,
            )
            cfg = TrainConfig.from_profile(
                "lmfn",
                "short",
                scale=s,
                max_minutes=train_minutes,
                data_root=str(data_root) if data_root else None,
                store=str(store),
                out=str(run),
                final_eval=sets,
            )
            train(cfg, echo=lambda m: err.print(m, highlight=False))
        else:
            err.print(f"[1/4] LMFN x{s} already trained in {store} (use --force to retrain)")
    # 2. every zoo model with weights (bicubic under both protocols: its published rows are MATLAB's)
    err.print("[2/4] evaluating the zoo (models with no checkpoint are listed, not evaluated)")
    common = dict(
        model=None,
        dataset=sets,
        scale=scales,
        data_root=data_root,
        checkpoint=None,
        weights_dir=weights_dir,
        shard=None,
        device="cpu",
        store=store,
        json_out=False,
        only=models,
    )
    eval_cmd(all_models=True, protocol="basicsr", force=force, **common)
    eval_cmd(**{**common, "model": "bicubic"}, all_models=False, protocol="matlab", force=force)
    # 3. params and FLOPs of every model (and latency if asked)
    err.print("[3/4] profiling params and FLOPs at 1280x720 output")
    profile(
        model=None,
        all_models=True,
        scale=scales,
        ntire=False,
        latency=latency,
        latency_size=None,
        device="cpu",
        dtype="fp32",
        runs=None,
        warmup=None,
        channels_last=False,
        compile_model=False,
        thop=False,
        force=force,
        shard=None,
        store=store,
        json_out=False,
        only=[*models, "lmfn"] if models else None,
    )
    # 4. the paper's tables and figure
    err.print(f"[4/4] writing reports to {out_dir / 'report'}")
    report_command(
        store=store, formats=["all"], out=out_dir / "report", ablation_dataset="Manga109", scale=max(scales)
    )


@store_app.command("merge")
@friendly_errors
def store_merge(
    sources: Annotated[list[Path], typer.Argument(help="Stores to merge in.")],
    into: Annotated[Path, typer.Option("--into", help="Target store.")] = Path(DEFAULT_STORE),
) -> None:
    """Merge results stores (e.g. from `eval --all --shard i/n` on several machines); newest wins per key."""
    db = Store(into)
    for s in sources:
        if not s.is_file():
            raise FileNotFoundError(f"store {s} does not exist")
        n = db.merge_from(s)
        out.print(f"{s}: {n} rows merged into {into}")


# the train and report commands live in their own modules; they import this module's helpers
from harness.cli_report import report_command  # noqa: E402
from harness.cli_train import train_command  # noqa: E402

app.command("train")(train_command)
app.command("report")(report_command)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
