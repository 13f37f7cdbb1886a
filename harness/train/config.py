"""The training recipe: :class:`TrainConfig` over a named profile (:mod:`harness.train.profiles`), TOML recipe
files and ``--set key=value``.

Precedence, lowest first: the profile < a ``--config`` recipe file < ``--set key=value`` < explicit CLI flags
(see :func:`layered_config`). A recipe file is flat TOML whose keys are :class:`TrainConfig` fields
(``ckpt_every = 500``, ``betas = [0.98, 0.92, 0.99]``); dashes in keys are read as underscores.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import MissingFileError, UsageError
from harness.settings import SCALES
from harness.train.data import resolve_sources
from harness.train.profiles import LR_SCHEDULES, PROFILES
from harness.train.state import STATE_FILE, read_state

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class TrainConfig:
    model: str
    scale: int = 4
    profile: str = "paper"
    iters: int = 0
    batch_size: int = 0
    patch_size: int = 0
    lr: float = 0.0
    ema: float = 0.0
    ema_warmup: bool = False
    betas: tuple[float, float, float] = (0.98, 0.92, 0.99)
    weight_decay: float = 0.0
    val_every: int = 0
    ckpt_every: int = 0
    log_every: int = 0
    max_minutes: float | None = None
    val_dataset: str | None = None  # None: Set5 when the data root has it, else the embedded Default set
    final_eval: list[str] = field(default_factory=list)  # sets for the final "eval" rows; [] = [val_dataset]
    train_data: list[str] = field(default_factory=list)  # resolved source folders (or ["default"])
    data_root: str | None = None
    seed: int = 0
    grid: str = ""  # the ablation grid this run belongs to ("" = a standalone run); recorded with its rows
    workers: int = 0
    device: str = "auto"
    init: str | None = None
    # warm start, then block-wise distillation (our addition, not the paper's): see distill.distill_new_blocks
    init_distill: int = 0  # steps; 0 = off
    distill_teacher: str | None = None  # zoo model the --init checkpoint loads into strictly (e.g. lkdn)
    distill_lr: float = 2e-3  # Adam lr of those steps
    distill_patch_size: int | None = None  # LR patch of those steps; None = patch_size
    kd_weight: float = 0.0  # loss = (1-w) L1(SR, HR) + w L1(SR, teacher's SR); the teacher as above
    warmup_iters: int = 0  # linear lr warm-up; 0 = the paper's constant lr
    lr_schedule: str = "constant"  # the paper's; "cosine": half-cosine to 0 at --iters (not the paper's)
    out: str = ""
    store: str | None = None
    deterministic: bool = False
    threads: int | None = None

    @classmethod
    def from_profile(cls, model: str, profile: str = "paper", **overrides: Any) -> TrainConfig:
        """A profile's values with the given (non-None) overrides on top."""
        if profile not in PROFILES:
            raise UsageError(f"unknown profile '{profile}'; choose one of {', '.join(PROFILES)}")
        base = {k: v for k, v in dataclasses.asdict(PROFILES[profile]).items() if k != "name"}
        base.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(model=model, profile=profile, **base)
        if not cfg.out:
            cfg.out = str(
                Path("runs") / f"{model.replace(':', '_').replace('@', '_')}_x{cfg.scale}_{profile}"
            )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`UsageError` (a ValueError) naming the first bad option."""
        checks = [
            (self.scale in SCALES, f"--scale must be one of {', '.join(map(str, SCALES))}, got {self.scale}"),
            (self.iters >= 1, f"--iters must be >= 1, got {self.iters}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.patch_size >= 4, f"--patch-size must be >= 4, got {self.patch_size}"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number, got {self.lr}"),
            (0.0 <= self.ema < 1.0, f"--ema must be in [0, 1), got {self.ema}"),
            (
                self.val_every >= 0 and self.ckpt_every >= 1 and self.log_every >= 1,
                "--val-every must be >= 0, --ckpt-every and --log-every >= 1",
            ),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.max_minutes is None or self.max_minutes > 0, "--max-minutes must be > 0"),
            (
                self.warmup_iters >= 0 and self.init_distill >= 0,
                "--warmup-iters, --init-distill must be >= 0",
            ),
            (
                not (self.init_distill or self.kd_weight) or (self.init and self.distill_teacher),
                "--init-distill and --kd-weight need --init CHECKPOINT and --distill-teacher MODEL "
                "(the model it belongs to)",
            ),
            (0.0 <= self.kd_weight <= 1.0, f"--kd-weight must be in [0, 1], got {self.kd_weight}"),
            (self.distill_lr > 0, f"--distill-lr must be > 0, got {self.distill_lr}"),
            (
                self.distill_patch_size is None or 4 <= self.distill_patch_size <= self.patch_size,
                f"--distill-patch-size must be in [4, --patch-size], got {self.distill_patch_size}",
            ),
            (
                self.lr_schedule in LR_SCHEDULES,
                f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got '{self.lr_schedule}'",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)

    def lr_at(self, i: int) -> float:
        """The lr of step ``i`` (0-based): constant or cosine-annealed to 0 at ``iters``, times an optional
        linear warm-up over ``warmup_iters``. A function of the iteration alone, so ``--resume`` continues it."""
        factor = min(1.0, (i + 1) / self.warmup_iters) if self.warmup_iters else 1.0
        if self.lr_schedule == "cosine":
            factor *= 0.5 * (1.0 + math.cos(math.pi * min(i, self.iters) / self.iters))
        return self.lr * factor

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["betas"] = tuple(d["betas"])
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


def resume_config(out: str | Path, **overrides: Any) -> TrainConfig:
    """The saved config of the run in ``out`` with the given (non-None) overrides, e.g. more ``iters``."""
    st = read_state(Path(out) / STATE_FILE)
    cfg = TrainConfig.from_json(st["config"])
    for k in ("model", "scale", "profile"):  # what the run is: an override that differs is a mistake
        given = overrides.pop(k, None)
        if given is not None and _fold(k, given) != _fold(k, getattr(cfg, k)):
            raise UsageError(
                f"--resume: {out} holds a {cfg.model} x{cfg.scale} run (profile {cfg.profile}), not {k} "
                f"{given}; drop the option, or start a new run in another --out"
            )
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.out = str(out)
    cfg.validate()
    return cfg


def _fold(key: str, value: Any) -> Any:
    """One spelling per network (``lmfn`` = ``lka-msm-ifm@mr``), so a resume may name the model either way."""
    if key != "model":
        return value
    from harness.zoo import get_spec

    return get_spec(str(value)).name


# ----------------------------------------------------------------------------------------------- recipe files

_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_TYPES = typing.get_type_hints(TrainConfig)
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_NULLS = ("", "none", "null")


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if tp in names:
        return names[tp]
    if typing.get_origin(tp) is tuple:
        return f"{len(typing.get_args(tp))} comma-separated numbers"
    if typing.get_origin(tp) is list:
        return "a comma-separated list"
    return str(tp)


def _items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ValueError


def _scalar(tp: type, value: Any) -> Any:
    """``value`` (a TOML value or a --set string) as ``tp``; ValueError when it is not one."""
    if isinstance(value, str) and tp is not str:
        text = value.strip().lower()
        if tp is bool:
            if text not in _TRUE + _FALSE:
                raise ValueError
            return text in _TRUE
        return tp(text)  # int("1.5") fails, as it should
    if tp is bool and isinstance(value, bool):
        return value
    if isinstance(value, bool):  # a bool is an int to Python, not to a recipe
        raise ValueError
    if tp is float and isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, tp):
        return value
    raise ValueError


def _convert(tp: Any, value: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):  # X | None
        inner = next(a for a in args if a is not type(None))
        # an empty value clears an optional field; "none" stays a word for strings (--val-dataset none)
        if isinstance(value, str) and value.strip().lower() in (_NULLS if inner is not str else ("",)):
            return None
        return _convert(inner, value)
    if origin is tuple:
        items = _items(value)
        if len(items) != len(args):
            raise ValueError
        return tuple(_scalar(a, v) for a, v in zip(args, items, strict=True))
    if origin is list:
        return [_scalar(args[0], v) for v in _items(value)]
    return _scalar(tp, value)


def coerce(key: str, value: Any, where: str) -> tuple[str, Any]:
    """``(field, value)`` with ``value`` converted to the type of that :class:`TrainConfig` field; ``where``
    (``--set``, ``recipe FILE``) starts the error message."""
    name = key.strip().replace("-", "_")
    if name not in _FIELDS:
        raise UsageError(f"{where}: unknown key '{key}'; valid keys: {', '.join(sorted(_FIELDS))}")
    try:
        return name, _convert(_TYPES[name], value)
    except (ValueError, TypeError):
        raise UsageError(f"{where}: {name}={value!r} is not {_type_name(_TYPES[name])}") from None


def load_recipe(path: str | Path) -> dict[str, Any]:
    """A TOML recipe file -> ``{field: value}`` typed like :class:`TrainConfig` (unknown keys are errors)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"recipe file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read recipe {path}: {e}") from None
    return dict(coerce(k, v, f"recipe {path}") for k, v in data.items())


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (``--set``, repeatable) -> ``{field: value}``; later keys win."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--set takes key=value, got '{item}'")
        name, val = coerce(key, value, "--set")
        out[name] = val
    return out


def _model_from_init(model: str | None, merged: dict[str, Any]) -> str | None:
    """``--init F`` without ``--model`` trains the network F holds (read off its weights) at its scale; the
    teacher of ``--init-distill`` / ``--kd-weight`` defaults to that network too. ``merged`` is updated."""
    need_teacher = bool(merged.get("init_distill") or merged.get("kd_weight")) and not merged.get("distill_teacher")
    if model is not None and not need_teacher:
        return model
    from harness import zoo

    found = zoo.detect(merged["init"], merged.get("scale"))
    if found.foreign:
        raise UsageError(f"--init {Path(merged['init']).name} is {found.name}: only zoo models train here; give --model")
    merged.setdefault("scale", found.scale)
    if need_teacher:
        merged["distill_teacher"] = found.name
    return model or found.name


def layered_config(
    flags: Mapping[str, Any],
    recipe: Mapping[str, Any] | None = None,
    sets: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    resume: str | Path | None = None,
) -> TrainConfig:
    """The config of profile < ``defaults`` < ``recipe`` < ``sets`` < ``flags`` (``resume``: the saved run's
    config instead of the profile). A None flag or default means "not given"; a None in ``recipe`` / ``sets``
    clears an optional field. ``model``, ``profile`` and ``scale`` may come from any layer (not on resume);
    ``train_data`` names given in a layer are resolved against the data root."""
    layers = [
        {k: v for k, v in (defaults or {}).items() if v is not None},
        dict(recipe or {}),
        dict(sets or {}),
    ]
    merged: dict[str, Any] = {}
    for layer in [*layers, {k: v for k, v in flags.items() if v is not None}]:
        merged.update(layer)
    cleared = [k for k, v in merged.items() if v is None]
    model, profile = merged.pop("model", None), merged.pop("profile", None)
    given_data = merged.pop("train_data", None)
    if resume is not None:
        merged.pop("out", None)  # the run folder is the one resumed
        cfg = resume_config(resume, model=model, profile=profile, **merged)
    else:
        model = _model_from_init(model, merged) if merged.get("init") else model
        cfg = TrainConfig.from_profile(model or "lmfn", profile or "paper", **merged)
    for k in cleared:
        setattr(cfg, k, None)
    if given_data or resume is None:
        cfg.train_data = resolve_sources(given_data or None, cfg.data_root)
    cfg.validate()
    return cfg
