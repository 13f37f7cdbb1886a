"""The model zoo: one registry from a name to a builder ``(scale) -> nn.Module`` plus metadata.

Models come from three places:
- every module of the ``lmfn`` and ``baselines`` packages that defines ``MODEL_SPECS`` (a list of plain dicts
  with the keys of :class:`ModelSpec`; plain dicts keep those packages free of harness imports);
- the ``lmfn_bench.models`` entry-point group (each entry point loads a callable ``(scale) -> nn.Module`` or a
  list of spec dicts);
- ``module.path:factory`` given directly as a model name.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points

from torch import nn

SCALES = (2, 3, 4)


class UnknownModelError(KeyError):
    """A model name the zoo does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[[int], nn.Module]
    scales: tuple[int, ...] = SCALES
    family: str = "baseline"  # "bicubic" | "lmfn" | "baseline" | "user"
    paper: str = ""
    published_name: str | None = None  # row name in baselines/published.csv
    # official checkpoint file names (fnmatch patterns) per scale, searched in --weights-dir
    checkpoints: Mapping[int, str] = field(default_factory=dict)
    checkpoint_keys: tuple[str, ...] = ("params_ema", "params", "state_dict", "model")
    input_range: float = 1.0  # 255.0 for models that expect 0-255 input (RFDN AIM)
    protocol: str = "basicsr"  # evaluation protocol the paper's numbers were made under
    whole_image: bool = False  # True where tiling would change the output (global pooling)
    description: str = ""

    def builder(self, scale: int) -> nn.Module:
        if scale not in self.scales:
            raise ValueError(f"model '{self.name}' has no x{scale} configuration (scales: {self.scales})")
        return self.build(scale)


_PACKAGES = ("lmfn", "baselines")


def _spec_from(obj: Mapping | ModelSpec) -> ModelSpec:
    if isinstance(obj, ModelSpec):
        return obj
    d = dict(obj)
    if "scales" in d:
        d["scales"] = tuple(d["scales"])
    if "checkpoint_keys" in d:
        d["checkpoint_keys"] = tuple(d["checkpoint_keys"])
    return ModelSpec(**d)


def _bicubic_spec() -> ModelSpec:
    from harness.bicubic_model import Bicubic

    return ModelSpec(
        name="bicubic",
        build=Bicubic,
        family="bicubic",
        paper="MATLAB imresize (Keys a=-0.5)",
        published_name="Bicubic",
        protocol="matlab",
        description="MATLAB-compatible bicubic upscaling; no parameters",
    )


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Extra names (module-level ``MODEL_ALIASES`` dicts) that resolve to a registered model."""
    out: dict[str, str] = {}
    for pkg_name in _PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            out.update(getattr(importlib.import_module(f"{pkg_name}.{info.name}"), "MODEL_ALIASES", {}))
    return out


@lru_cache(maxsize=1)
def registry() -> dict[str, ModelSpec]:
    """Every known model by name (built once per process)."""
    specs: dict[str, ModelSpec] = {}

    def add(spec: ModelSpec, origin: str) -> None:
        if spec.name in specs:
            raise RuntimeError(f"model name '{spec.name}' registered twice (again by {origin})")
        specs[spec.name] = spec

    add(_bicubic_spec(), "harness")
    for pkg_name in _PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            mod = importlib.import_module(f"{pkg_name}.{info.name}")
            for obj in getattr(mod, "MODEL_SPECS", ()):
                add(_spec_from(obj), mod.__name__)
    for ep in entry_points(group="lmfn_bench.models"):
        loaded = ep.load()
        if callable(loaded) and not isinstance(loaded, (list, tuple)):
            add(ModelSpec(name=ep.name, build=loaded, family="user", paper=ep.value), ep.value)
        else:
            for obj in loaded:
                add(_spec_from(obj), ep.value)
    return specs


def names() -> list[str]:
    return list(registry())


def _factory_spec(target: str) -> ModelSpec:
    mod_name, _, attr = target.partition(":")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise UnknownModelError(f"cannot import model factory '{target}': {e}") from None
    return ModelSpec(name=target, build=factory, family="user", paper=target)


def get_spec(name: str) -> ModelSpec:
    """Look a model up by zoo name (case-insensitive) or as ``module.path:factory``."""
    if ":" in name:
        return _factory_spec(name)
    reg = registry()
    key = name.strip().lower()
    key = aliases().get(key, key)
    if key not in reg:
        raise UnknownModelError(f"unknown model '{name}'; known models: {', '.join(reg)}")
    return reg[key]


def build(name: str, scale: int) -> nn.Module:
    """Build a model (fresh random weights) for ``scale``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    return get_spec(name).builder(scale)
