"""Loading official and trained checkpoints with strict key checking and clear errors.

Files are read with ``torch.load(weights_only=True)`` (tensors and plain containers only: a pickle that would
run code is refused, never executed) or, for ``.safetensors``, with safetensors. Containers are unwrapped the
way spandrel's ``canonicalize_state_dict`` does it (``params_ema`` / ``params`` / ``state_dict`` / ``model`` /
``net`` keys, a single-entry wrapper, ``module.`` / ``netG.`` prefixes); :func:`unwrap_report` says which.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from harness.errors import CheckpointMismatchError, MissingFileError

DEFAULT_KEYS = ("params_ema", "params", "state_dict", "model")
# what detection unwraps when no model is named (spandrel's list; params_ema first: BasicSR's published model)
DETECT_KEYS = ("params_ema", "params-ema", "params", "model_state_dict", "state_dict", "model", "net")
PREFIXES = ("module.", "netG.")


def file_sha256(path: str | Path, length: int = 16) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def read_checkpoint(path: str | Path) -> object:
    """torch.load on CPU; refuses to execute arbitrary pickles, falls back only for legacy tensor pickles."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path}")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refused an object: say so in one line, never retry
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f" (it wants {found.group(1)})" if found else ""
        raise CheckpointMismatchError(
            f"cannot read checkpoint {path}: not a weights-only file{what}; refused, nothing in it was run"
        ) from None
    except Exception as e:  # corrupt or foreign file: say which file and why
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointMismatchError(f"cannot read checkpoint {path}: {type(e).__name__}: {first}") from None


def unwrap_report(obj: object, keys: Sequence[str] = DEFAULT_KEYS) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state dict inside ``obj`` and the steps that found it (e.g. ``["params_ema", "prefix module."]``):
    the first of ``keys`` present, else the only entry of a one-entry dict, then ``module.`` / ``netG.``
    prefixes stripped. Tensors that are not floating / integer parameters (optimizer state, ints) are refused."""
    sd, steps = obj, []
    if isinstance(sd, Mapping):
        for k in keys:
            if k in sd and isinstance(sd[k], Mapping):
                sd, steps = sd[k], [k]
                break
        else:
            if len(sd) == 1 and isinstance(next(iter(sd.values())), Mapping):
                k = next(iter(sd))
                sd, steps = sd[k], [str(k)]
    if not isinstance(sd, Mapping) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointMismatchError(
            "checkpoint holds no state dict (looked for keys "
            + ", ".join(keys)
            + " and a flat dict of tensors)"
        )
    out = {str(k): v for k, v in sd.items()}
    for prefix in PREFIXES:
        while out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix) :]: v for k, v in out.items()}
            steps.append(f"prefix {prefix}")
    return out, steps


def unwrap_state_dict(obj: object, keys: Sequence[str] = DEFAULT_KEYS) -> dict[str, torch.Tensor]:
    """Container unwrapping (see :func:`unwrap_report`); a flat state dict is returned as is."""
    return unwrap_report(obj, keys)[0]


def describe_mismatch(model: nn.Module, sd: Mapping[str, torch.Tensor], limit: int = 8) -> str | None:
    """None when ``sd`` fits ``model`` exactly, else a readable list of missing/unexpected/misshaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shaped = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shaped):
        return None

    def fmt(label: str, items: list[str]) -> str:
        more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
        return f"{len(items)} {label}: " + ", ".join(items[:limit]) + more

    parts = [
        fmt(lbl, it)
        for lbl, it in (("missing", missing), ("unexpected", unexpected), ("misshaped", shaped))
        if it
    ]
    return "; ".join(parts)


def load_into(model: nn.Module, path: str | Path, keys: Sequence[str] = DEFAULT_KEYS) -> nn.Module:
    """Load a checkpoint file into ``model`` with strict=True after container unwrapping.

    Raises :class:`CheckpointMismatchError` naming the mismatched keys and shapes; the model is untouched then.
    """
    sd = unwrap_state_dict(read_checkpoint(path), keys)
    problem = describe_mismatch(model, sd)
    if problem:
        raise CheckpointMismatchError(
            f"checkpoint {Path(path).name} does not fit {type(model).__name__}: {problem}"
        )
    model.load_state_dict(sd, strict=True)
    return model
