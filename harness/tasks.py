"""Orchestration without typer or rich: the evaluation and profile matrices and the pipeline.

Commands (``harness.cli``) parse options and call these; progress is reported through a :class:`Reporter`
(the CLI passes progress bars, library callers nothing). Rows are made by :mod:`harness.results` and written
to the store one at a time, so an interrupted matrix keeps what it measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from harness import zoo
from harness.errors import MissingCheckpointError, UsageError
from harness.evaluate import evaluate_model
from harness.latency import PRECISIONS, resolve_device
from harness.measure import profile_model
from harness.metrics import check_protocol
from harness.provenance import device_name
from harness.results import eval_row, profile_device_key, profile_row, store_key
from harness.settings import DEFAULT_PROTOCOL, LATENCY_RUNS, LATENCY_WARMUP
from harness.store import Store
from harness.train.state import run_provenance


class Reporter:
    """Progress callbacks; this base class ignores them all."""

    def start(self, description: str) -> None: ...
    def tick(self, done: int, total: int, name: str = "") -> None: ...
    def finish(self) -> None: ...
    def advance(self) -> None: ...


class LazyStore:
    """The results store, opened at the first write, so a run that fails early leaves no file behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        Store.check_writable(self.path)  # a bad --store fails before the work, not after it
        self._db: Store | None = None

    def add(self, row: dict) -> dict:
        self._db = self._db or Store(self.path)
        return self._db.add(row)

    def has(self, **where: Any) -> bool:
        if self._db is None and not self.path.is_file():
            return False
        self._db = self._db or Store(self.path)
        return self._db.has(**where)


def skip_existing(db: LazyStore, row: dict, force: bool) -> bool:
    """The one skip policy: a measurement whose store key is already there is not redone unless forced."""
    return not force and db.has(**store_key(row))


# ----------------------------------------------------------------------------------------------------------
# jobs


@dataclass(frozen=True)
class Job:
    """One model at one scale; ``checkpoint`` overrides the official file found under ``weights_dir``."""

    model: str
    scale: int
    checkpoint: Path | None = None


def checkpoint_job(checkpoint: str | Path, scales: list[int] | None = None, model: str | None = None) -> Job:
    """The job of a checkpoint given without a zoo name: the network and scale read off its weights
    (``model="spandrel"`` forces spandrel's detection); one ``scales`` entry is a hint the weights must match."""
    if scales and len(scales) > 1:
        raise UsageError("a checkpoint holds one scale: give at most one --scale with --checkpoint")
    found = zoo.detect(checkpoint, scales[0] if scales else None, force_spandrel=model is not None)
    return Job(found.name, found.scale, Path(checkpoint))


def checkpoint_jobs(models: list[str] | None, scales: list[int] | None, checkpoint: str | Path) -> list[Job]:
    """The jobs of ``--checkpoint F`` with or without ``--model``: read off the weights when no model (or
    ``spandrel``) is named, else the named model at each of ``scales`` (default 4) loading ``F``."""
    from harness.detect import SPANDREL

    if not models or list(models) == [SPANDREL]:
        return [checkpoint_job(checkpoint, scales, models[0] if models else None)]
    jobs = zoo_jobs(models, list(scales or [4]))
    if len({j.model for j in jobs}) != 1:
        raise UsageError("--checkpoint belongs to one model: give a single --model")
    return [Job(j.model, j.scale, Path(checkpoint)) for j in jobs]


def inspect_checkpoint(checkpoint: str | Path, scale: int | None = None, model: str | None = None) -> dict[str, Any]:
    """What a checkpoint was detected as (``lmfn-bench inspect``): architecture, scale, configuration read
    off its shapes, params of the built network, container keys unwrapped, keys that decided."""
    from harness.measure import count_params

    found = zoo.detect(checkpoint, scale, force_spandrel=model is not None)
    net = zoo.create(found.name, found.scale, checkpoint)
    info = zoo.zoo_info(net)
    return {"file": str(checkpoint), "model": found.name, "scale": found.scale, "family": info.family,
            "detector": found.detector, "config": found.config, "params": count_params(net),
            "input_range": info.input_range, "unwrapped": list(found.unwrapped) or ["(flat state dict)"],
            "deciding_keys": list(found.deciding), "tensors": len(found.state_dict), "sha256": info.checkpoint_hash,
            "paper": info.paper}  # fmt: skip


def fetch_weights(models: list[str] | None, *, base_url: str | None = None, force: bool = False) -> list:
    """``weights fetch``: the official files of ``models`` (zoo names or patterns; none: all) into the cache."""
    from harness import weights

    files = None
    if models:
        files = []
        for name in zoo.select(models):
            own = [f for f in zoo.get_spec(name).checkpoints.values() if f in weights.SOURCES]
            if not own:
                raise UsageError(f"model '{name}' has no public official checkpoint to fetch")
            files += own
    return weights.fetch(list(dict.fromkeys(files)) if files else None, base_url=base_url, force=force)


def job_name(job: Job) -> str:
    """The registered name of a job's network (``spandrel:<ArchId>`` names are their own)."""
    return job.model if zoo.is_spandrel(job.model) else zoo.get_spec(job.model).name


def zoo_jobs(models: Iterable[str] | None, scales: list[int], shard: tuple[int, int] = (0, 1)) -> list[Job]:
    """Every (model, scale) pair: ``models`` (names or patterns; None = the whole zoo) at each of ``scales``
    the model has (``[]`` = all of them); named models without a requested scale are an error."""
    names = zoo.select(models) if models is not None else list(zoo.registry())
    jobs = []
    for name in names:
        have = zoo.get_spec(name).scales
        if models is not None and scales and not any(s in have for s in scales):
            raise UsageError(f"model '{name}' has no x{'/x'.join(map(str, scales))} configuration (scales: {list(have)})")
        jobs += [Job(name, s) for s in have if not scales or s in scales]
    i, n = shard
    return jobs[i::n]


# ----------------------------------------------------------------------------------------------------------
# evaluation


@dataclass
class MatrixResult:
    rows: list[dict] = field(default_factory=list)
    skipped: int = 0  # already in the store
    no_checkpoint: list[str] = field(default_factory=list)  # "name xS" of models with no weights to load

    def record(self, db: LazyStore, row: dict, on_row: Callable[[dict], None] | None) -> None:
        """Write ``row`` (one atomic store row) and keep it; ``on_row`` sees it as written (JSON lines)."""
        self.rows.append(db.add(row))
        if on_row is not None:
            on_row(self.rows[-1])


def load_job(job: Job, weights_dir: str | Path | None) -> tuple[torch.nn.Module, str, dict[str, Any]]:
    """The model of ``job`` with its weights; source and extra say whether they were trained here."""
    model = zoo.create(job.model, job.scale, job.checkpoint, weights_dir, require_weights=True)
    run = run_provenance(job.checkpoint) if job.checkpoint else None
    return model, ("trained" if run else "measured"), (run or {})


def loaded_jobs(
    jobs: Iterable[Job], weights_dir: str | Path | None, missing_ok: bool, res: MatrixResult, on: Reporter
) -> Iterator[tuple[Job, torch.nn.Module, str, dict[str, Any]]]:
    """Each job with its loaded model, source and run provenance (:func:`load_job`); with ``missing_ok`` a
    model without weights is listed in ``res.no_checkpoint`` (and its progress step done) instead of failing."""
    for job in jobs:
        try:
            model, source, run = load_job(job, weights_dir)
        except MissingCheckpointError:
            if not missing_ok:
                raise
            res.no_checkpoint.append(f"{job.model} x{job.scale}")
            on.advance()
            continue
        yield job, model, source, run


def evaluate_matrix(
    jobs: list[Job],
    datasets: list[str],
    *,
    data_root: str | Path | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    weights_dir: str | Path | None = None,
    device: str = "cpu",
    store: str | Path,
    force: bool = True,
    missing_ok: bool = False,
    on: Reporter | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> MatrixResult:
    """PSNR/SSIM of every job on every set into the store. ``force=False`` skips what the store has;
    ``missing_ok`` lists models without a checkpoint instead of failing on the first."""
    check_protocol(protocol)
    resolve_device(device)  # a bad or absent device fails before any model is built
    on, db, res = on or Reporter(), LazyStore(store), MatrixResult()
    for job, model, source, run in loaded_jobs(jobs, weights_dir, missing_ok, res, on):
        info = zoo.zoo_info(model)
        for ds in datasets:
            probe = {"kind": "eval", "model": info.name, "scale": job.scale, "dataset": ds,
                     "protocol": protocol, "source": source, "checkpoint_hash": info.checkpoint_hash,
                     "device_key": ""}  # fmt: skip
            if skip_existing(db, probe, force):
                res.skipped += 1
                continue
            on.start(f"{info.name} x{job.scale} {ds}")
            torch.manual_seed(0)
            result = evaluate_model(model, ds, job.scale, data_root, protocol, device, on_image=on.tick)
            res.record(db, eval_row(info, result, device, source=source, extra=run), on_row)
            on.finish()
        on.advance()
    return res


# ----------------------------------------------------------------------------------------------------------
# profile


@dataclass(frozen=True)
class ProfileOptions:
    ntire: bool = False  # FLOPs and latency for a 256x256 LR input instead of a 1280x720 output
    flops: bool = True  # False: params and latency only (a second precision of a model already counted)
    thop: bool = True
    latency: bool = True
    latency_size: tuple[int, int] | None = None
    device: str = "cpu"
    dtype: str = "fp32"
    runs: int | None = None  # None: settings.LATENCY_RUNS for the device
    warmup: int | None = None
    channels_last: bool = False
    compile: bool = False

    def checked(self) -> ProfileOptions:
        resolve_device(self.device)
        if self.dtype not in PRECISIONS:
            raise UsageError(f"dtype must be one of {', '.join(PRECISIONS)}, got '{self.dtype}'")
        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        return replace(
            self,
            runs=LATENCY_RUNS[kind] if self.runs is None else self.runs,
            warmup=LATENCY_WARMUP[kind] if self.warmup is None else self.warmup,
        )

    @property
    def input_tag(self) -> str:
        """The FLOP protocol's input, as ``measure.profile_model`` names it (the row's ``dataset``)."""
        return "ntire256" if self.ntire else "hd720"

    def device_key(self) -> str:
        where = device_name(self.device) if self.latency else "no-latency"
        return profile_device_key(self.input_tag, where, self.dtype, self.channels_last, self.compile)


def profile_matrix(
    jobs: list[Job],
    options: ProfileOptions,
    *,
    store: str | Path,
    force: bool = False,
    on: Reporter | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> MatrixResult:
    """Params, FLOPs and (optionally) latency of every job, each network once, into the store."""
    opts, on, db, res = options.checked(), on or Reporter(), LazyStore(store), MatrixResult()
    key = opts.device_key()
    for job in dict.fromkeys(jobs):  # the same network twice (an alias and its name) is traced once
        name = job_name(job)
        probe = {"kind": "profile", "model": name, "scale": job.scale, "dataset": opts.input_tag,
                 "protocol": "", "source": "measured", "checkpoint_hash": "", "device_key": key}  # fmt: skip
        if skip_existing(db, probe, force):
            res.skipped += 1
            on.advance()
            continue
        on.start(f"profile {name} x{job.scale}")
        # the network as published: FLOPs and latency without the input-range adapter; fresh weights do
        # (same costs), except for a network that exists only as its checkpoint (spandrel:*)
        ckpt = job.checkpoint if name.startswith("spandrel:") else None
        model = zoo.create(job.model, job.scale, ckpt, native_range=True)
        metrics = profile_model(
            model, job.scale, ntire=opts.ntire, flops=opts.flops, thop=opts.thop, latency=opts.latency,
            latency_size=opts.latency_size, device=opts.device, dtype=opts.dtype, runs=opts.runs,
            warmup=opts.warmup, channels_last=opts.channels_last, compile=opts.compile,
        )  # fmt: skip
        res.record(db, profile_row(zoo.zoo_info(model), metrics, key, opts.device), on_row)
        on.finish()
        on.advance()
    return res


# ----------------------------------------------------------------------------------------------------------
# the pipeline (the README's main job)


@dataclass(frozen=True)
class PipelineOptions:
    data_root: Path | None = None
    weights_dir: Path | None = None
    scales: tuple[int, ...] = (4,)
    grid_iters: int = 100  # the ablation grid's budget: 10 networks, 1 seed, inside ~10 min on 2 CPU cores
    latency: bool = False
    out_dir: Path = Path("lmfn-bench-out")
    store: Path = Path("lmfn-results.db")
    force: bool = False
    models: tuple[str, ...] | None = None  # evaluate / profile only these (default: the zoo)


Bars = Callable[[int, str], Any]  # (total, label) -> context manager yielding a Reporter


def _no_bars(total: int, label: str) -> Any:
    return nullcontext(Reporter())


def ablation_set(data_root: str | Path | None) -> str:
    """The set of Tables 1-2: the paper's Manga109 when present, else the largest set available."""
    from harness.data import available_datasets

    have = available_datasets(data_root)
    return next((s for s in ("Manga109", "Urban100", "B100", "Set14", "Set5") if s in have), have[0])


def train_grid(opts: PipelineOptions, scale: int, echo: Callable[[str], None]) -> dict[str, Path]:
    """Tables 1-2's grid (10 networks, seed 0) at the pipeline's small iteration budget; returns each
    network's checkpoint. Finished runs are skipped, so a second pipeline retrains nothing."""
    from harness.ablation import GridEvents, grid_status, make_grid, run_grid
    from harness.train import MODEL_FILE

    class Lines(GridEvents):
        def finish(self, run: Any, outcome: str, info: dict[str, Any]) -> None:
            echo(f"  {run.label}: {outcome} ({info.get('train_seconds', 0):.0f} s)")

    spec = make_grid(
        seeds=[0], data_root=opts.data_root, ablation_set=ablation_set(opts.data_root), scale=scale,
        out=opts.out_dir / "ablation", store=opts.store, overrides={"iters": opts.grid_iters},
    )  # fmt: skip
    if opts.force:
        import shutil

        shutil.rmtree(spec.dir, ignore_errors=True)
    if all(r.state == "done" for r in grid_status(spec)):
        echo(f"ablation grid x{scale} already trained in {spec.dir} (use --force to retrain)")
    else:
        echo(f"training the ablation grid x{scale}: {len(spec.variants)} networks, {opts.grid_iters} iterations each")
    run_grid(spec, launcher="local", jobs=1, on=Lines())  # merges finished runs into the store either way
    return {r.variant: r.dir / MODEL_FILE for r in spec.runs() if (r.dir / MODEL_FILE).is_file()}


def run_pipeline(opts: PipelineOptions, echo: Callable[[str], None], bars: Bars = _no_bars) -> MatrixResult:
    """Train the ablation grid (Tables 1-2; its LMFN is Table 3's trained LMFN), evaluate every zoo model with
    weights (the grid's networks through the same path as any checkpoint; bicubic also under ``matlab``, the
    protocol of its published rows), profile params and FLOPs. Steps whose results the store has are skipped
    unless ``force``. Returns the evaluation matrix."""
    from harness.data import available_datasets

    sets = available_datasets(opts.data_root)
    scales = list(opts.scales)
    echo("[1/4] training the ablation grid (Tables 1-2)")
    trained = {s: train_grid(opts, s, echo) for s in scales}
    grid = sorted({v for t in trained.values() for v in t})
    models = [*opts.models, *grid] if opts.models else None  # a filter still keeps Tables 1-2's networks
    jobs = [Job(j.model, j.scale, trained[j.scale].get(j.model)) for j in zoo_jobs(models, scales)]
    echo("[2/4] evaluating the zoo (models with no checkpoint are listed, not evaluated)")
    common: dict[str, Any] = dict(data_root=opts.data_root, weights_dir=opts.weights_dir, store=opts.store,
                                  force=opts.force)  # fmt: skip
    with bars(len(jobs), "evaluate") as on:
        res = evaluate_matrix(jobs, sets, missing_ok=True, on=on, **common)
    bicubic = [Job("bicubic", s) for s in scales]
    with bars(len(bicubic), "evaluate (matlab)") as on:
        more = evaluate_matrix(bicubic, sets, protocol="matlab", on=on, **common)
    res.rows += more.rows
    res.skipped += more.skipped
    echo("[3/4] profiling params and FLOPs at 1280x720 output")
    profile_jobs = [Job(j.model, j.scale) for j in jobs]
    with bars(len(profile_jobs), "profile") as on:
        options = ProfileOptions(latency=opts.latency, thop=False)
        profile_matrix(profile_jobs, options, store=opts.store, force=opts.force, on=on)
    return res
