"""``lmfn-bench ablate``: the paper's ablation grid (parse, call :mod:`harness.ablation`, print)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness import ablation
from harness.cli.common import DEFAULT_STORE_PATH, DataRootOpt, JsonOpt, StoreOpt, echo, friendly_errors, out
from harness.errors import UsageError
from harness.settings import ABLATION_SET
from harness.train import PROFILES


def _opt(tp: Any, help: str, *names: str, **kw: Any) -> Any:
    return Annotated[tp, typer.Option(*names, help=help, **kw)]


TableOpt = _opt(str, "1 (cell patterns), 2 (IFF schemes of LMFN) or all (both: 10 networks).", "--table")
VariantOpt = _opt(
    list[str] | None,
    "Only these networks of the table(s), any spelling (lmfn, ifm, ...); repeatable.",
    "--variant",
    "-m",
)
SeedsOpt = _opt(int | None, f"Seeds 0..N-1 (default {ablation.DEFAULT_SEEDS}).", "--seeds")
SeedOpt = _opt(list[int] | None, "These seeds instead of --seeds; repeatable.", "--seed")
ProfileOpt = _opt(
    str | None, f"Recipe: {' | '.join(PROFILES)} (default {ablation.DEFAULT_PROFILE}).", "--profile"
)
ConfigOpt = _opt(
    Path | None,
    "TOML recipe of TrainConfig fields over the profile (as train takes it).",
    "--config",
    metavar="RECIPE.toml",
)
SetOpt = _opt(
    list[str] | None,
    "key=value for any TrainConfig field (as train takes it); repeatable.",
    "--set",
    metavar="KEY=VALUE",
)
ScaleOpt = _opt(int | None, "Upscaling factor (default 4).", "--scale", "-s")
TrainDataOpt = _opt(
    list[str] | None, "Training HR folder or set name under the data root; repeatable.", "--train-data"
)
AblationSetOpt = _opt(
    str, "The set of Tables 1-2; every other available benchmark set is evaluated too.", "--ablation-set"
)
OutOpt = _opt(Path, "Grids live in OUT/<grid id>/<variant>/seed<S>.", "--out")
DeviceOpt = _opt(str | None, "auto | cpu | cuda (not part of the recipe).", "--device")
LauncherOpt = _opt(str, "local (worker processes here) | slurm (a submitit job array).", "--launcher")
JobsOpt = _opt(int | None, "local: worker processes (default one per GPU, else 1).", "--jobs", "-j")
GpusOpt = _opt(int, "slurm: GPUs per job; > 1 trains under torchrun (DDP).", "--gpus-per-job")
CpusOpt = _opt(int | None, "slurm: CPUs per job (torch threads per process follow).", "--cpus-per-job")
PartitionOpt = _opt(str | None, "slurm: partition.", "--partition")
TimeOpt = _opt(int, "slurm: time limit per job in minutes.", "--time-min")
WaitOpt = _opt(bool, "slurm: wait for the jobs, then collect (default: return after submitting).", "--wait")
StatusOpt = _opt(
    bool, "Show the grid (variant x seed: done / running / failed / to do) and exit.", "--status"
)
CollectOpt = _opt(bool, "Only merge finished runs' stores into --store.", "--collect")
GridOpt = _opt(
    str | None, "An existing grid id under --out: its recipe from grid.json (no recipe options).", "--grid"
)
ClusterOpt = _opt(
    str | None,
    "submitit cluster (local / debug: run the slurm path on this machine; tests, CI).",
    "--submitit-cluster",
    hidden=True,
    envvar=ablation.SUBMITIT_ENV,
)


class _Lines(ablation.GridEvents):
    """One line per run start and finish (runs are minutes long; no bars)."""

    def __init__(self, main_set: str) -> None:
        self.main_set = main_set

    def start(self, run: ablation.Run, where: str) -> None:
        echo(f"start   {run.label}  ({where})")

    def finish(self, run: ablation.Run, outcome: str, info: dict[str, Any]) -> None:
        if outcome == "done":
            psnr = info.get("psnr", {}).get(self.main_set)
            score = f"; {self.main_set} {psnr:.3f} dB" if psnr is not None else ""
            secs = float(info.get("train_seconds", 0.0))
            took = f"{secs:.0f} s" if secs < 90 else f"{secs / 60:.1f} min"
            echo(f"done    {run.label}: {info.get('iteration', '?')} iterations in {took}{score}")
        elif outcome == "failed":
            echo(f"FAILED  {run.label}: {info.get('error', '?')}")
        else:
            echo(f"stopped {run.label} ({outcome}); it resumes on the next invocation")

    def note(self, message: str) -> None:
        echo(message)


def _spec(grid: str | None, recipe_given: bool, **kw: Any) -> ablation.GridSpec:
    """The grid the options name; ``--grid ID`` reads an existing one (variants / seeds: all it has)."""
    if grid is None:
        seeds = ablation.DEFAULT_SEEDS if kw["seeds"] is None else kw["seeds"]
        return ablation.make_grid(**{**kw, "seeds": seeds})
    if recipe_given:
        raise UsageError("--grid reads the recipe from its grid.json: drop --profile / --config / --set")
    names = ablation.table_variants(kw["table"], kw["variants"]) if kw["variants"] else None
    seeds = ablation.seed_list(kw["seeds"]) if kw["seeds"] is not None else None
    return ablation.load_grid(Path(kw["out"]) / grid, variants=names, seeds=seeds, store=kw["store"],
                              device=kw["device"])  # fmt: skip


def _cell(st: ablation.RunStatus) -> str:
    word = "to do" if st.state == "todo" else st.state
    return f"{word} ({st.detail})" if st.detail else word


def _print_status(spec: ablation.GridSpec, json_out: bool) -> None:
    rows = ablation.grid_status(spec)
    if json_out:
        for r in rows:
            print(json.dumps({"grid": spec.id, **r.to_json()}), flush=True)
        return
    cell = {(r.variant, r.seed): r for r in rows}
    out.print(f"grid {spec.id}: {spec.dir}", highlight=False, soft_wrap=True)
    table = Table()
    table.add_column("variant")
    for s in spec.seeds:
        table.add_column(f"seed {s}")
    for v in spec.variants:
        table.add_row(v, *(_cell(cell[v, s]) for s in spec.seeds))
    out.print(table)


def _summary(res: ablation.GridResult, store: Path, json_out: bool) -> None:
    c = res.counts
    if json_out:
        merged = res.collected.rows if res.collected else None
        print(json.dumps({"grid": res.grid, "dir": str(res.dir), **c, "merged_rows": merged,
                          "job_ids": res.job_ids}), flush=True)  # fmt: skip
    if res.job_ids and res.collected is None:
        out.print(f"submitted {len(res.job_ids)} jobs: {' '.join(res.job_ids)}", highlight=False)
        echo("when they have finished: the same command with --collect merges them into the store")
        return
    rest = "".join(f", {c[k]} {k}" for k in ("running", "failed", "todo") if c[k])
    echo(f"grid {res.grid}: {c['done']}/{len(res.status)} runs done{rest}")
    if res.collected is not None:
        echo(f"merged {res.collected.rows} new rows from {res.collected.runs} finished runs into {store}")
    if not res.complete:
        echo("rerun the same command to resume interrupted runs and retry failed ones")
        raise typer.Exit(1)


def _run(
    spec: ablation.GridSpec, launcher: str, jobs: int | None, slurm: ablation.SlurmOptions, json_out: bool
) -> None:
    nets, seeds = len(spec.variants), len(spec.seeds)
    echo(f"grid {spec.id}: {nets} network{'s' * (nets != 1)} x {seeds} seed{'s' * (seeds != 1)}, "
         f"{spec.base.iters} iterations each ({spec.base.profile}), in {spec.dir}")  # fmt: skip
    res = ablation.run_grid(spec, launcher, jobs, _Lines(spec.eval_sets[0]), slurm=slurm)
    _summary(res, spec.store, json_out)


@friendly_errors
def command(
    table: TableOpt = "all",
    variants: VariantOpt = None,
    seeds: SeedsOpt = None,
    seed: SeedOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    scale: ScaleOpt = None,
    data_root: DataRootOpt = None,
    train_data: TrainDataOpt = None,
    ablation_set: AblationSetOpt = ABLATION_SET,
    out_dir: OutOpt = Path(ablation.DEFAULT_OUT),
    store: StoreOpt = DEFAULT_STORE_PATH,
    device: DeviceOpt = None,
    launcher: LauncherOpt = "local",
    jobs: JobsOpt = None,
    gpus_per_job: GpusOpt = 0,
    cpus_per_job: CpusOpt = None,
    partition: PartitionOpt = None,
    time_min: TimeOpt = 720,
    wait: WaitOpt = False,
    status: StatusOpt = False,
    collect: CollectOpt = False,
    grid: GridOpt = None,
    json_out: JsonOpt = False,
    submitit_cluster: ClusterOpt = None,
) -> None:
    """The paper's ablation (Tables 1 and 2) as one resumable grid: networks x seeds under one recipe.

    Every run trains with the grid's recipe for a number of iterations (never minutes; the wall time is recorded), and for one seed every network sees the same training patches, so differences between networks are paired. A run lives in OUT/<grid id>/<variant>/seed<S> with its own store; the grid id hashes the recipe, so the same command names the same grid. Finished runs are evaluated on --ablation-set and every other available set, then merged into --store.

    Rerunning skips finished runs, resumes interrupted ones and retries failed ones; a run is never trained by two processes at once (a per-run lock that dies with its process). --status shows the grid, --collect only merges.

    Examples: `ablate --data-root D --train-data T91 --ablation-set Set14 --jobs 2` (one CPU machine); `ablate --profile ablation-gpu ...` on a GPU node (one worker per GPU); `ablate --launcher slurm --gpus-per-job 1 --partition gpu ...` on a cluster, then `ablate ... --collect`.
    """
    if seeds is not None and seed:
        raise UsageError("give --seeds N or --seed S (repeatable), not both")
    if status and collect:
        raise UsageError("give --status or --collect, not both")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {jobs}")
    if launcher not in ablation.LAUNCHERS:
        raise UsageError(f"--launcher must be one of {', '.join(ablation.LAUNCHERS)}, got '{launcher}'")
    spec = _spec(
        grid, bool(profile or config or sets), table=table, variants=variants,
        seeds=list(seed) if seed else seeds, profile=profile, config=config, sets=list(sets or []),
        scale=scale, data_root=data_root, train_data=list(train_data or []), ablation_set=ablation_set,
        out=out_dir, store=store, device=device,
    )  # fmt: skip
    if status:
        _print_status(spec, json_out)
    elif collect:
        got = ablation.collect(spec)
        echo(f"merged {got.rows} new rows from {got.runs} finished runs of grid {spec.id} into {store}")
    else:
        slurm = ablation.SlurmOptions(
            partition=partition, time_min=time_min, gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
            wait=wait, cluster=submitit_cluster,
        )  # fmt: skip
        _run(spec, launcher, jobs, slurm, json_out)
