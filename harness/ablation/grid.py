"""The ablation grid: which networks (Tables 1 and 2), which seeds, one recipe, and where each run lives.

A grid is networks x seeds under one recipe. Its id is a short hash of the recipe (every
:class:`~harness.train.TrainConfig` field except the per-run and per-machine ones), so the same command names
the same grid and a changed recipe a new one. Run ``(variant, seed)`` lives in
``<out>/<grid id>/<variant>/seed<S>`` with its own results store (SQLite is never shared between cluster
jobs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import zoo
from harness.data import available_datasets, canonical_dataset
from harness.errors import MissingFileError, UnknownModelError, UsageError
from harness.provenance import now
from harness.settings import ABLATION_SET, DEFAULT_SET, DEFAULT_STORE
from harness.train.config import TrainConfig, layered_config, load_recipe, parse_sets
from lmfn.cells import SCHEMES
from lmfn.variants import PATTERNS, canonical_name

# Table 1: the cell patterns, IFM ones at LMFN's default scheme; Table 2: LMFN's cells with each IFF scheme
# (canonical_name is the zoo's fold, without building the registry at import)
TABLES: dict[str, tuple[str, ...]] = {
    "1": tuple(canonical_name(p) for p in PATTERNS),
    "2": tuple(canonical_name(f"lka-msm-ifm@{s}") for s in SCHEMES),
}
TABLES["all"] = tuple(dict.fromkeys([*TABLES["1"], *TABLES["2"]]))  # LMFN is in both: 10 networks

DEFAULT_PROFILE = "ablation-cpu"
DEFAULT_SEEDS = 2
DEFAULT_OUT = "runs/ablation"
GRID_FILE = "grid.json"
RUN_STORE = "results.db"
# what a run or a machine sets, not the recipe: left out of the grid id
_NOT_RECIPE = ("model", "seed", "out", "store", "device", "threads", "workers", "grid")


@dataclass(frozen=True)
class Run:
    """One (variant, seed) of a grid and its folder."""

    variant: str
    seed: int
    dir: Path

    @property
    def label(self) -> str:
        return f"{self.variant} seed {self.seed}"


@dataclass(frozen=True)
class GridSpec:
    """A grid: ``base`` is the recipe (its model / seed / out / store are set per run)."""

    base: TrainConfig
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    out: Path = Path(DEFAULT_OUT)
    store: Path = Path(DEFAULT_STORE)

    @property
    def recipe(self) -> dict[str, Any]:
        return {k: v for k, v in self.base.to_json().items() if k not in _NOT_RECIPE}

    @property
    def id(self) -> str:
        return grid_id(self.recipe)

    @property
    def dir(self) -> Path:
        return self.out / self.id

    @property
    def eval_sets(self) -> list[str]:
        return list(self.base.final_eval)

    def run(self, variant: str, seed: int) -> Run:
        return Run(variant, seed, self.dir / variant / f"seed{seed}")

    def runs(self) -> list[Run]:
        """Seed-major: every network at the first seed before any at the second (a table fills early)."""
        return [self.run(v, s) for s in self.seeds for v in self.variants]

    def config(self, run: Run, threads: int | None = None, device: str | None = None) -> TrainConfig:
        """The training config of ``run``: the grid's recipe plus the run's model, seed, folder and store."""
        cfg = dataclasses.replace(
            self.base,
            model=run.variant,
            seed=run.seed,
            grid=self.id,
            out=str(run.dir),
            store=str(run.dir / RUN_STORE),
            threads=self.base.threads if threads is None else threads,
            device=device or self.base.device,
            final_eval=list(self.base.final_eval),
            train_data=list(self.base.train_data),
        )
        cfg.validate()
        return cfg


def grid_id(recipe: Mapping[str, Any]) -> str:
    """``<profile>-x<scale>-<8 hex>``: readable, and a stable hash of everything else of the recipe."""
    digest = hashlib.sha256(json.dumps(dict(recipe), sort_keys=True, default=str).encode()).hexdigest()
    return f"{recipe['profile']}-x{recipe['scale']}-{digest[:8]}"


def table_variants(table: str, only: Iterable[str] | None = None) -> tuple[str, ...]:
    """The networks of ``table`` (1, 2 or all), restricted to ``only`` (any spelling, folded by the zoo)."""
    if table not in TABLES:
        raise UsageError(f"--table must be 1, 2 or all, got '{table}'")
    grid = TABLES[table]
    if not only:
        return grid
    chosen = []
    for v in only:
        try:
            name = zoo.get_spec(v).name
        except UnknownModelError:
            name = ""
        if name not in grid:
            raise UsageError(f"variant '{v}' is not in table {table}; its networks: {', '.join(grid)}")
        chosen.append(name)
    return tuple(n for n in grid if n in chosen)


def seed_list(seeds: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise UsageError(f"--seeds must be >= 1, got {seeds}")
        return tuple(range(seeds))
    if not seeds:
        raise UsageError("give at least one seed")
    if any(s < 0 for s in seeds):
        raise UsageError(f"seeds must be >= 0, got {list(seeds)}")
    return tuple(dict.fromkeys(seeds))


def eval_sets(ablation_set: str, data_root: str | Path | None) -> list[str]:
    """The ablation set first, then every other benchmark set the data root has."""
    main, have = canonical_dataset(ablation_set), available_datasets(data_root)
    if main != DEFAULT_SET and main not in have:
        where = f"under {data_root}" if data_root else "here (no --data-root given)"
        raise UsageError(
            f"ablation set {main} is not {where}; available: {', '.join(have)} "
            "(choose one with --ablation-set)"
        )
    return [main, *(s for s in have if s != main)]


def make_grid(
    *,
    table: str = "all",
    variants: Iterable[str] | None = None,
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    profile: str | None = None,
    config: str | Path | None = None,
    sets: Sequence[str] = (),
    scale: int | None = None,
    data_root: str | Path | None = None,
    train_data: Sequence[str] = (),
    ablation_set: str = ABLATION_SET,
    out: str | Path = DEFAULT_OUT,
    store: str | Path = DEFAULT_STORE,
    device: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> GridSpec:
    """A grid from the options ``ablate`` takes; the recipe is layered exactly as ``train`` layers it
    (profile < ``config`` file < ``sets`` (``"key=value"`` strings; ``overrides``: the same as typed values)
    < flags), then the grid's own rules: no mid-run validation, an iteration budget (never minutes), the
    final eval on ``ablation_set`` and every other available set."""
    names, seed_ids = table_variants(table, variants), seed_list(seeds)
    flags = {"model": names[0], "profile": profile, "scale": scale, "device": device,
             "data_root": str(data_root) if data_root else None,
             "train_data": list(train_data) or None}  # fmt: skip
    recipe = load_recipe(config) if config else {}
    layer = {**parse_sets(sets), **(overrides or {})}
    base = layered_config(flags, recipe, layer, defaults={"profile": DEFAULT_PROFILE})
    root = str(Path(base.data_root).resolve()) if base.data_root else None  # the same folder from any cwd
    base = dataclasses.replace(
        base, model="", seed=0, grid="", out="", store=None, val_dataset="none", max_minutes=None,
        data_root=root, final_eval=eval_sets(ablation_set, root),
    )  # fmt: skip
    return GridSpec(base, names, seed_ids, Path(out).resolve(), Path(store).resolve())


# ----------------------------------------------------------------------------------------------- grid.json


def write_grid(spec: GridSpec) -> Path:
    """``<grid dir>/grid.json``: the recipe, and the variants / seeds asked for so far (a union over
    invocations, so ``--status --grid ID`` shows them all)."""
    path = spec.dir / GRID_FILE
    old = json.loads(path.read_text()) if path.is_file() else {}
    info = {
        "grid": spec.id,
        "recipe": spec.recipe,
        "variants": list(dict.fromkeys([*old.get("variants", []), *spec.variants])),
        "seeds": sorted({*old.get("seeds", []), *spec.seeds}),
        "created": old.get("created") or now(),
    }
    spec.dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    tmp.replace(path)
    return path


def load_grid(
    grid_dir: str | Path,
    *,
    variants: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    store: str | Path = DEFAULT_STORE,
    device: str | None = None,
) -> GridSpec:
    """The grid in ``grid_dir`` as its ``grid.json`` records it (variants / seeds: all asked for so far)."""
    grid_dir = Path(grid_dir)
    path = grid_dir / GRID_FILE
    if not path.is_file():
        raise MissingFileError(f"no ablation grid in {grid_dir} ({GRID_FILE} missing)")
    info = json.loads(path.read_text())
    base = TrainConfig.from_json({**info["recipe"], "model": "", "device": device or "auto", "store": None})
    spec = GridSpec(
        base,
        tuple(variants or info["variants"]),
        tuple(seeds if seeds is not None else info["seeds"]),
        grid_dir.parent,
        Path(store),
    )
    if spec.id != grid_dir.name:  # the recipe did not round-trip: a hand-edited or foreign grid.json
        raise UsageError(f"{path} describes grid {spec.id}, not {grid_dir.name}")
    return spec
