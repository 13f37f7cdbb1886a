"""The paper's ablation (Tables 1 and 2) as one resumable grid job: networks x seeds under one recipe.

Table 1 = the 7 cell patterns, Table 2 = LMFN's cells with the 4 IFF schemes; LMFN is in both (10 networks).
For one seed every network sees the same patch sequence (the data order is a pure function of seed and sample
index), so differences between networks are paired. The budget is iterations, never minutes; each run's wall
time is recorded in its rows (``extra.train_seconds``), beside ``extra.seed`` and ``extra.grid``.

Layout: ``<out>/<grid id>/grid.json`` (recipe, variants, seeds) and one ordinary training run folder per
``<variant>/seed<S>`` with its own store, lock and markers (:mod:`.runs`). Rerunning skips finished runs,
resumes interrupted ones and retries failed ones; a run is never trained by two processes at once.

Library use (what ``lmfn-bench ablate`` does)::

    spec = make_grid(table="all", seeds=2, profile="ablation-cpu", data_root=..., ablation_set="Set14")
    result = run_grid(spec, launcher="local", jobs=1, on=GridEvents())   # trains, then merges into spec.store
    grid_status(spec); collect(spec)
"""

from __future__ import annotations

from harness.ablation.grid import (
    DEFAULT_OUT,
    DEFAULT_PROFILE,
    DEFAULT_SEEDS,
    TABLES,
    GridSpec,
    Run,
    eval_sets,
    grid_id,
    load_grid,
    make_grid,
    seed_list,
    table_variants,
    write_grid,
)
from harness.ablation.launch import (
    LAUNCHERS,
    SUBMITIT_ENV,
    GridEvents,
    GridResult,
    SlurmOptions,
    run_grid,
)
from harness.ablation.runs import (
    STATES,
    Collected,
    RunLock,
    RunStatus,
    collect,
    execute_run,
    grid_status,
    is_done,
    lock_holder,
)

__all__ = [
    "DEFAULT_OUT",
    "DEFAULT_PROFILE",
    "DEFAULT_SEEDS",
    "LAUNCHERS",
    "STATES",
    "SUBMITIT_ENV",
    "TABLES",
    "Collected",
    "GridEvents",
    "GridResult",
    "GridSpec",
    "Run",
    "RunLock",
    "RunStatus",
    "SlurmOptions",
    "collect",
    "eval_sets",
    "execute_run",
    "grid_id",
    "grid_status",
    "is_done",
    "load_grid",
    "lock_holder",
    "make_grid",
    "run_grid",
    "seed_list",
    "table_variants",
    "write_grid",
]
