"""The model zoo: one registry from a name to a builder ``(scale) -> nn.Module`` plus metadata, and
:func:`create`, the one build-and-load path (like timm's ``create_model``) every command goes through.

Models come from three places:
- every module of the ``lmfn`` and ``baselines`` packages that defines ``MODEL_SPECS`` (a list of plain dicts
  with the keys of :class:`ModelSpec`; plain dicts keep those packages free of harness imports);
- the ``lmfn_bench.models`` entry-point group (each entry point loads a callable ``(scale) -> nn.Module`` or a
  list of spec dicts);
- ``module.path:factory`` given directly as a model name.
LMFN variant spellings (``lmfn``, ``lka-msm-ifm``, ``IFM``) fold to one registered name through
:func:`lmfn.variants.canonical_name`.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path

import torch
from torch import nn

from harness.checkpoint import (
    DEFAULT_KEYS,
    DETECT_KEYS,
    file_sha256,
    load_into,
    read_checkpoint,
    unwrap_state_dict,
)
from harness.detect import SPANDREL, Detection, is_spandrel
from harness.detect import detect as detect_checkpoint
from harness.errors import MissingCheckpointError, MissingFileError, UnknownModelError, UsageError
from harness.settings import SCALES

__all__ = ["SCALES", "ModelSpec", "UnknownModelError", "ZooInfo", "build", "create", "get_spec", "registry"]


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
    checkpoint_keys: tuple[str, ...] = DEFAULT_KEYS
    input_range: float = 1.0  # 255.0 for models that expect 0-255 input (RFDN AIM)
    protocol: str = "basicsr"  # evaluation protocol the paper's numbers were made under
    whole_image: bool = False  # True where tiling would change the output (global pooling)
    description: str = ""

    def builder(self, scale: int) -> nn.Module:
        if scale not in self.scales:
            raise UsageError(f"model '{self.name}' has no x{scale} configuration (scales: {list(self.scales)})")
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
    """Look a model up by zoo name (case-insensitive, LMFN spellings folded) or as ``module.path:factory``."""
    if is_spandrel(name):  # spandrel:<ArchId> rows are read off their checkpoint, not registered
        raise UnknownModelError(f"'{name}' is a spandrel architecture, not a zoo entry; give --checkpoint FILE")
    if ":" in name:
        return _factory_spec(name)
    reg = registry()
    key = name.strip().lower()
    if key not in reg:
        from lmfn.variants import canonical_name

        try:
            key = canonical_name(key)
        except ValueError:
            pass
    if key not in reg:
        raise UnknownModelError(f"unknown model '{name}'; known models: {', '.join(reg)}")
    return reg[key]


def select(patterns: Iterable[str]) -> list[str]:
    """Registered names for names or shell patterns (``lka*``, like timm's ``list_models``), in zoo order,
    each network once. A pattern that matches nothing is an error."""
    reg, chosen = registry(), set()
    for pat in patterns:
        if any(c in pat for c in "*?["):
            hits = fnmatch.filter(reg, pat.strip().lower())
            if not hits:
                raise UnknownModelError(f"no zoo model matches '{pat}'; `lmfn-bench models` lists them")
            chosen.update(hits)
        else:
            chosen.add(get_spec(pat).name)
    ordered = [n for n in reg if n in chosen]
    return ordered + sorted(chosen - set(ordered))  # module.path:factory names last


# ----------------------------------------------------------------------------------------------------------
# building and loading


@dataclass(frozen=True)
class ZooInfo:
    """What :func:`create` built, attached to the model as ``model.zoo_info`` (like timm's pretrained_cfg)."""

    name: str
    family: str
    paper: str
    scale: int
    checkpoint: str = ""  # the file loaded ("" for fresh weights)
    checkpoint_hash: str = ""
    input_range: float = 1.0  # the network's own input range; the model create returns takes [0, 1]


def find_checkpoint(spec: ModelSpec, scale: int, weights_dir: str | Path | None) -> Path | None:
    """The official checkpoint of ``spec`` at ``scale`` under ``weights_dir`` (searched recursively by name)."""
    if weights_dir is None or scale not in spec.checkpoints:
        return None
    root = Path(weights_dir)
    if not root.is_dir():
        raise MissingFileError(f"weights dir {root} does not exist")
    hits = sorted(root.rglob(spec.checkpoints[scale]))
    return hits[0] if hits else None


def container_keys(spec: ModelSpec) -> tuple[str, ...]:
    """The container keys tried when loading ``spec``'s files: its own first (e.g. BSRN's ``params``), then
    the ones detection unwraps (``net``, ``model_state_dict`` ...), so a detected file always loads."""
    return (*spec.checkpoint_keys, *(k for k in DETECT_KEYS if k not in spec.checkpoint_keys))


def checkpoint_state_dict(name: str, path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` unwrapped with model ``name``'s own container keys (for partial loading)."""
    return unwrap_state_dict(read_checkpoint(path), container_keys(get_spec(name)))


def _scale_input_range(model: nn.Module, input_range: float) -> None:
    """Make a network that expects ``0..input_range`` input take and return [0, 1] (hooks keep its keys)."""

    def scale_in(_m: nn.Module, args: tuple) -> tuple:
        return (args[0] * input_range, *args[1:])

    def scale_out(_m: nn.Module, _args: tuple, out: torch.Tensor) -> torch.Tensor:
        return out / input_range

    model.register_forward_pre_hook(scale_in)
    model.register_forward_hook(scale_out)


def build(name: str, scale: int) -> nn.Module:
    """The bare network of ``name`` at ``scale``: fresh weights, its own input range (see :func:`create`)."""
    if scale not in SCALES:
        raise UsageError(f"scale must be one of {', '.join(map(str, SCALES))}, got {scale}")
    spec = get_spec(name)
    if spec.family != "user":
        return spec.builder(scale)
    try:  # a user's factory: its failures are the user's to fix, said in one line
        model = spec.builder(scale)
    except TypeError as e:
        raise UsageError(f"model factory '{spec.name}' cannot be called as factory(scale): {e}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"model factory '{spec.name}' returned {type(model).__name__}, not a torch nn.Module")
    return model


def create(
    name: str | None,
    scale: int | None = None,
    checkpoint: str | Path | None = None,
    weights_dir: str | Path | None = None,
    *,
    require_weights: bool = False,
    native_range: bool = False,
) -> nn.Module:
    """Build ``name`` at ``scale`` and load its weights: ``checkpoint`` (strict), else the official file found
    by name under the weights cache and ``weights_dir``, else fresh weights (an error with ``require_weights``
    for a model that has learnable ones). ``name=None`` reads the network and scale off ``checkpoint``
    (:mod:`harness.detect`; ``scale`` is then a hint); ``name="spandrel"`` forces spandrel's detection.
    The model takes and returns RGB in [0, 1] whatever its own input range, unless ``native_range`` (FLOPs
    and latency of the network as published). ``model.zoo_info`` says what was built."""
    if name is None or is_spandrel(name):
        if checkpoint is None:
            raise UsageError("without --model, give --checkpoint FILE: the network is read off its weights")
        found = detect(checkpoint, scale, force_spandrel=name is not None)
        if name not in (None, SPANDREL) and found.name != name:
            raise UsageError(f"checkpoint {Path(checkpoint).name} is {found.name}, not {name}")
        if found.foreign:
            return _create_foreign(found, Path(checkpoint))
        name, scale = found.name, found.scale
    if scale is None:
        raise UsageError(f"model '{name}' needs a scale (--scale 2, 3 or 4)")
    model, spec = build(name, scale), get_spec(name)
    ckpt = Path(checkpoint) if checkpoint else find_official(spec, scale, weights_dir)
    if ckpt is not None:
        load_into(model, ckpt, container_keys(spec))
    elif require_weights and any(p.requires_grad for p in model.parameters()):
        where = f" in {weights_dir}" if weights_dir else ""
        raise MissingCheckpointError(
            f"model '{spec.name}' x{scale} has no checkpoint{where}: give --checkpoint FILE or --weights-dir DIR"
            + (" (or run `lmfn-bench weights fetch`)" if scale in spec.checkpoints else "")
        )
    if spec.input_range != 1.0 and not native_range:
        _scale_input_range(model, spec.input_range)
    model.zoo_info = ZooInfo(
        spec.name,
        spec.family,
        spec.paper,
        scale,
        str(ckpt or ""),
        file_sha256(ckpt) if ckpt else "",
        spec.input_range,
    )
    return model


def detect(path: str | Path, scale: int | None = None, *, force_spandrel: bool = False) -> Detection:
    """What checkpoint ``path`` holds, read off its weights (:mod:`harness.detect`; zoo entries first, then
    spandrel's architectures unless ``force_spandrel`` skips the zoo). ``scale`` is a hint."""
    return detect_checkpoint(path, build, scale, force_spandrel=force_spandrel)


def find_official(spec: ModelSpec, scale: int, weights_dir: str | Path | None) -> Path | None:
    """The official file of ``spec`` x``scale``: the fetched copy in the weights cache, then ``weights_dir``."""
    from harness.weights import cached_checkpoint

    return cached_checkpoint(spec.checkpoints.get(scale)) or find_checkpoint(spec, scale, weights_dir)


def _create_foreign(found: Detection, path: Path) -> nn.Module:
    """A spandrel network (``found``: a :class:`harness.detect.Detection`) with the zoo's metadata."""
    from harness.foreign import spandrel_network, spandrel_version

    model = spandrel_network(found.state_dict, found.scale)
    paper = f"{model.arch_name} through spandrel {spandrel_version()}"
    model.zoo_info = ZooInfo(found.name, "spandrel", paper, found.scale, str(path), file_sha256(path), 1.0)
    return model


def zoo_info(model: nn.Module) -> ZooInfo:
    """``model.zoo_info``, or a ``user`` entry for a model that did not come from :func:`create`."""
    model = getattr(model, "module", model)  # DDP / AveragedModel wrap the network
    found = getattr(model, "zoo_info", None)
    if isinstance(found, ZooInfo):
        return found
    return ZooInfo(type(model).__name__, "user", "", int(getattr(model, "upscale", 0) or 0))
