"""The one module of ``reports/`` that touches the harness: it reads the results store (read-only), the zoo's
catalogue and the published numbers into a plain :class:`~reports.schema.ReportInputs`, then hands them to
the pure :func:`reports.tables.build_report` (and :func:`reports.render.write_report`).

Model names fold to one key per network through the zoo (``get_spec(name).name``: ``lmfn`` and
``LKA-MSM-IFM`` are ``lka-msm-ifm@mr``, ``ifm`` is ``ifm@mr``); a name the zoo does not know stays as it is.
The store is opened with ``Store(path, readonly=True)``: a report never creates, migrates or writes a store.
A paired interval over results that are not on the same images (:class:`reports.stats.PairingError`) becomes a
:class:`~harness.errors.DataError` naming the store.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from harness.data import canonical_dataset
from harness.errors import DataError, MissingFileError, StoreError, UnknownModelError, UsageError
from harness.paths import shared_dir
from harness.settings import ABLATION_SET, BENCHMARKS, DEFAULT_PROTOCOL, DEFAULT_SCALE, DEFAULT_SET, SCALES
from harness.store import Store
from harness.zoo import ModelSpec, get_spec
from lmfn.cells import SCHEMES
from lmfn.variants import PATTERNS
from reports import render, tables
from reports.schema import ModelInfo, Report, ReportInputs, StatsOptions
from reports.stats import PairingError

__all__ = ["EmptyStoreError", "load_inputs", "load_published", "load_report", "model_key", "report_folder",
           "save_report", "write_reports"]

REPORTED_KINDS = ("eval", "profile")
FIGURE_KINDS = ("visual", "lam")  # Figs. 5, 6 and Table 3's DI; a store of only these has nothing to tabulate


class EmptyStoreError(StoreError):
    """The store has nothing to report."""


def _spec(name: str) -> ModelSpec | None:
    try:
        return get_spec(name)
    except UnknownModelError:
        return None


def model_key(name: str) -> str:
    """One key per distinct network: the zoo's registered name, or ``name`` itself if the zoo lacks it."""
    spec = _spec(name)
    return spec.name if spec else name


def display_name(spec: ModelSpec) -> str:
    """One spelling per network in every table and figure: the paper's name; for a zoo variant without one,
    its base model's paper name plus the upper-cased suffix (``safmn-ntire`` -> ``SAFMN-NTIRE``); other zoo
    names upper-cased (``span`` -> ``SPAN``); a user's model under its own name."""
    if spec.published_name:
        return spec.published_name
    if spec.family == "user":
        return spec.name
    base, sep, suffix = spec.name.partition("-")
    base_spec = _spec(base) if sep else None
    if base_spec is not None and base_spec.published_name:
        return f"{base_spec.published_name}-{suffix.upper()}"
    return spec.name.upper()


def _info(spec: ModelSpec) -> ModelInfo:
    return ModelInfo(display_name(spec), spec.family, spec.protocol, spec.published_name)


def load_published(path: str | Path | None = None) -> dict[tuple[str, int], dict]:
    """Published rows by (lower-case name, scale): ``baselines/published.csv``, else the reference copy."""
    if path is None:
        packaged = resources.files("baselines") / "published.csv"
        ref = shared_dir()
        if packaged.is_file():
            path = Path(str(packaged))
        elif ref is not None and (ref / "reference" / "published.csv").is_file():
            path = ref / "reference" / "published.csv"
        else:
            return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["model"].strip().lower(), int(r["scale"])): r for r in csv.DictReader(f)}


def read_rows(store: str | Path) -> list[dict]:
    """The store's eval, profile, visual and lam rows, read-only. Missing, non-store and empty files are
    HarnessErrors."""
    path = Path(store)
    if not path.is_file():  # checked here too, for the hint: Store's own message has none
        raise MissingFileError(f"results store {path} does not exist; run `lmfn-bench eval` first")
    try:
        rows = Store(path, readonly=True).rows()
    except sqlite3.DatabaseError as e:  # a damaged file can pass the open check and fail on reading
        raise StoreError(f"{path} is not a results store ({e})") from None
    if not any(r["kind"] in REPORTED_KINDS for r in rows):
        raise EmptyStoreError(
            f"results store {path} has no eval or profile results; run `lmfn-bench eval` first"
        )
    return [r for r in rows if r["kind"] in (*REPORTED_KINDS, *FIGURE_KINDS)]


def _catalogue(names: Iterable[str]) -> dict[str, ModelInfo]:
    specs = (_spec(n) for n in set(names))
    return {s.name: _info(s) for s in specs if s is not None}


def load_inputs(store: str | Path, published: str | Path | None = None) -> ReportInputs:
    """Everything :func:`reports.tables.build_report` reads, from the store, the zoo and the published CSV."""
    rows = read_rows(store)
    keys = {m: model_key(m) for m in {r["model"] for r in rows}}
    lmfn = model_key("lmfn")
    pattern = lmfn.partition("@")[0]  # Table 2 varies the IFF scheme of the full model's pattern
    return ReportInputs(
        rows=tuple({**r, "key": keys[r["model"]]} for r in rows),
        catalogue=_catalogue(keys),
        published=load_published(published),
        store=str(Path(store)),
        scales=SCALES,
        sets=BENCHMARKS,
        default_set=DEFAULT_SET,
        default_protocol=DEFAULT_PROTOCOL,
        lmfn=lmfn,
        patterns=tuple((p, model_key(p)) for p in PATTERNS),
        schemes=tuple((s, model_key(f"{pattern}@{s}")) for s in SCHEMES),
    )


def _check_stats(stats: StatsOptions) -> None:
    if not 0 < stats.level < 1:
        raise UsageError(f"the confidence level must be between 0 and 1 (e.g. 0.95), got {stats.level}")
    if stats.n_resamples < 1:
        raise UsageError(f"the number of bootstrap resamples must be positive, got {stats.n_resamples}")


def _compare_keys(inputs: ReportInputs, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """``--compare`` names folded to keys; a name without eval rows in the store is a usage error."""
    measured = {r["key"] for r in inputs.rows if r["kind"] == "eval"}
    for name in (n for pair in pairs for n in pair):
        if model_key(name) not in measured:
            raise UsageError(f"cannot compare '{name}': {inputs.store} has no eval results for it")
    return tuple((model_key(a), model_key(b)) for a, b in pairs)


def load_report(
    store: str | Path,
    dataset: str = ABLATION_SET,
    scale: int = DEFAULT_SCALE,
    published: str | Path | None = None,
    *,
    compare: Iterable[tuple[str, str]] = (),
    stats: StatsOptions | None = None,
) -> Report:
    """Read ``store`` and build Tables 1-3 and the Fig. 1 points (Tables 1-2 and Fig. 1 on ``dataset``), plus
    the paired differences of each ``compare`` pair of models; ``stats``: level, resamples, bootstrap seed."""
    dataset = canonical_dataset(dataset)  # an unknown set fails before the store is read
    stats = stats or StatsOptions()
    _check_stats(stats)
    pairs = list(compare)
    inputs = load_inputs(store, published)
    try:
        return tables.build_report(inputs, dataset, scale, stats, _compare_keys(inputs, pairs))
    except PairingError as e:
        raise DataError(f"{inputs.store}: {e}") from None


def write_reports(
    store: str | Path,
    formats: Iterable[str] = render.FORMATS,
    out: str | Path = "report",
    dataset: str = ABLATION_SET,
    scale: int = DEFAULT_SCALE,
    published: str | Path | None = None,
    *,
    compare: Iterable[tuple[str, str]] = (),
    stats: StatsOptions | None = None,
) -> list[Path]:
    """Read ``store`` and write the report in ``formats`` (``latex``, ``html``, ``md``, ``all``) under
    ``out``; returns the files written. The library entry for the pipeline; the command is a thin wrapper.
    ``compare`` and ``stats`` as for :func:`load_report`."""
    names = set(formats)
    unknown = sorted(names - {*render.FORMATS, "all"})
    if unknown:  # checked before the store is read, like the command's options
        choices = ", ".join((*render.FORMATS, "all"))
        raise UsageError(f"unknown report format '{unknown[0]}'; choose from {choices}")
    fmts = tuple(f for f in render.FORMATS if f in names or "all" in names)
    out = report_folder(out)
    return save_report(load_report(store, dataset, scale, published, compare=compare, stats=stats), out, fmts)


def report_folder(out: str | Path) -> Path:
    """``out`` if a report can go there: checked before the store is read (a file there is an error)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the report")
    return out


def save_report(rep: Report, out: Path, formats: tuple[str, ...]) -> list[Path]:
    """:func:`reports.render.write_report` with a folder that cannot be written as a one-line error."""
    try:
        return render.write_report(rep, out, formats)
    except OSError as e:
        raise MissingFileError(f"cannot write the report to {out}: {e.strerror or e}") from None
