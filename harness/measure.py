"""Model cost: parameters, FLOPs (fvcore in three columns, thop as a cross-check), latency and peak memory.

Everything returns plain dicts (JSON-able values) so the CLI and the results store can take them as they are.

FLOPs are multiply-accumulates (MACs, one fused multiply-add = 1, as SR papers count "Multi-Adds") for one
LR image of ``ceil(720/s) x ceil(1280/s)`` (a 1280x720 HR output; x3: 240x427), batch 1, or 256x256 in NTIRE
mode. The model is traced once by fvcore's FlopCountAnalysis and three columns are read off that one trace:

- ``flops_paper``: convolutions and linear / matmul ops only (what papers count),
- ``flops_fvcore``: exactly what ``FlopCountAnalysis(model, x).total()`` returns (fvcore's default handles),
- ``flops_full``: fvcore's defaults plus the handles in :mod:`harness.flop_handles` (element-wise ops,
  activations, reductions, pooling, resizes; each price documented there).

Beside each column come the ops it did not count (``unsupported_fvcore`` = fvcore's ``unsupported_ops()``).
``flops_thop`` is ``thop.profile`` (module hooks: convs, linears, nn norms/pools/upsample modules only).

Which column reproduces which paper (tools read from the official repos; x4, 180x320, measured here):
LKDN used thop (calculate_params_flops.py) with an nn.LayerNorm that thop prices at 4/element: conv 18.22 +
LN 0.10 = 18.33 G (published 18.3); our ``flops_fvcore`` gives 18.35 G, ``flops_paper`` 18.22 G. BSRN used an
older thop that added one op per conv output for the bias (basicsr/summary.py): ``flops_paper`` 19.18 + bias
0.24 = 19.41 G (published 19.4). VapSR 19.5 G and IMDN 41 G (its FLOPs/profile.py) match ``flops_paper``
(19.52, 40.89 G). SAFMN used fvcore's defaults (safmn_arch.py __main__) on a hand-written LayerNorm fvcore
cannot see: conv + nearest resize = 13.55 G; our ``flops_fvcore`` 13.72 G (our LN traces as layer_norm);
both round to the published 14 G. ``flops_thop`` depends on module types (an LN written as a function is
invisible to it), so it is a cross-check only.

Latency and peak memory are measured by :mod:`harness.latency`; :func:`profile_model` puts all in one row.
"""

from __future__ import annotations

import copy
import math
import platform
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from torch import nn

from harness.flop_handles import FULL_HANDLES, FVCORE_IGNORED, FVCORE_OPS, PAPER_OPS
from harness.latency import measure_latency

HD_SIZE = (720, 1280)  # HR height x width the FLOPs protocol targets
NTIRE_LR_SIZE = (256, 256)  # NTIRE efficient-SR challenge: FLOPs for a 256x256 LR input


# ----------------------------------------------------------------------------------------------------------
# sizes, params, environment


def lr_size_for(scale: int, ntire: bool = False) -> tuple[int, int]:
    """LR (height, width) of the FLOPs protocol: a 1280x720 HR output, or NTIRE's 256x256 LR input."""
    if ntire:
        return NTIRE_LR_SIZE
    # ceil, so that x3 gives 240 x 427 as the SR papers use (426.67 rounded up)
    return math.ceil(HD_SIZE[0] / scale), math.ceil(HD_SIZE[1] / scale)


def count_params(model: nn.Module) -> int:
    """Number of parameters, ``sum(p.numel())`` (shared parameters counted once, as ``parameters()`` does)."""
    return sum(p.numel() for p in model.parameters())


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Library versions every measured row carries."""
    return {
        "torch_version": torch.__version__,
        "fvcore_version": _pkg_version("fvcore"),
        "thop_version": _pkg_version("thop"),
        "python_version": platform.python_version(),
    }


def format_ops(ops: Mapping[str, int]) -> str:
    """``{'aten::gelu': 73, ...}`` -> ``'gelu x73, ...'`` (most frequent first) for tables and logs."""
    items = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k.split('::', 1)[-1]} x{n}" for k, n in items)


def _probe_input(model: nn.Module, size: tuple[int, int], in_channels: int = 3) -> torch.Tensor:
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    # fixed seed: a data-dependent model (offsets, gates) then traces the same way every time
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, in_channels, *size, generator=g).to(device)


# ----------------------------------------------------------------------------------------------------------
# FLOPs


def _tagged(kind: str, handle: Callable, calls: Counter) -> Callable:
    """Wrap a handle so its count is filed under the full aten name and its calls are tallied."""

    def wrapped(inputs: list[Any], outputs: list[Any]) -> Counter:
        calls[kind] += 1
        r = handle(inputs, outputs)
        total = sum(r.values()) if isinstance(r, Mapping) else r
        return Counter({kind: int(round(total))})

    return wrapped


def count_flops(
    model: nn.Module, size: tuple[int, int], *, in_channels: int = 3, with_thop: bool = True
) -> dict[str, Any]:
    """FLOP columns for one ``1 x in_channels x H x W`` input (``size`` = (H, W)); values are MACs.

    One fvcore trace yields all three fvcore columns: each handle tags its count with the op name, and a
    column is the sum over its op set (paper: conv/linear/matmul; fvcore: fvcore's default table; full: all).
    """
    from fvcore.nn import FlopCountAnalysis

    x = _probe_input(model, size, in_channels)
    calls: Counter[str] = Counter()
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer / jit deprecation chatter
            fca = FlopCountAnalysis(model, (x,))
            fca.set_op_handle(**{k: _tagged(k, h, calls) for k, h in FULL_HANDLES.items()})
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            by_op = Counter({k: int(v) for k, v in fca.by_operator().items()})
            unsupported_full = Counter(fca.unsupported_ops())
    finally:
        model.train(was_training)

    # what plain fvcore would list: no handle there, and not on fvcore's list of free ops
    unsupported_fvcore = unsupported_full + Counter(
        {k: n for k, n in calls.items() if k not in FVCORE_OPS and k not in FVCORE_IGNORED}
    )
    uncounted_paper = unsupported_full + Counter(
        {k: n for k, n in calls.items() if k not in PAPER_OPS and by_op.get(k, 0) > 0}
    )
    out: dict[str, Any] = {
        "lr_h": size[0],
        "lr_w": size[1],
        "flops_paper": sum(v for k, v in by_op.items() if k in PAPER_OPS),
        "flops_fvcore": sum(v for k, v in by_op.items() if k in FVCORE_OPS),
        "flops_full": sum(by_op.values()),
        "uncounted_paper": dict(uncounted_paper),
        "unsupported_fvcore": dict(unsupported_fvcore),
        "unsupported_full": dict(unsupported_full),
        "flops_by_op": {k: v for k, v in sorted(by_op.items(), key=lambda kv: -kv[1]) if v},
    }
    if with_thop:
        try:
            out["flops_thop"] = thop_macs(model, x)
        except Exception as e:  # a cross-check must not sink the row; say why it is missing
            out["flops_thop"] = None
            out["flops_thop_error"] = f"{type(e).__name__}: {e}"
    return out


def thop_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs by ``thop.profile`` (module hooks). Runs on a copy: thop leaves buffers on hook-less modules."""
    m = copy.deepcopy(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thop compares versions with distutils' LooseVersion
        import thop
        from thop.vision.basic_hooks import count_convNd

        # thop matches hooks by exact type: conv subclasses (lmfn's Conv1x1) are counted as the convs they are
        subs = {type(mod): count_convNd for mod in m.modules() if isinstance(mod, nn.Conv2d) and type(mod) is not nn.Conv2d}
        macs, _ = thop.profile(m, inputs=(x,), custom_ops=subs, verbose=False)
    return int(macs)


# ----------------------------------------------------------------------------------------------------------
# one call for the CLI


def profile_model(
    model: nn.Module,
    scale: int,
    *,
    lr_size: tuple[int, int] | None = None,
    ntire: bool = False,
    flops: bool = True,
    thop: bool = True,
    latency: bool = True,
    latency_size: tuple[int, int] | None = None,
    device: str = "cpu",
    dtype: str = "fp32",
    runs: int = 50,
    warmup: int = 10,
    channels_last: bool = False,
    compile: bool = False,
) -> dict[str, Any]:
    """Params, FLOP columns and (optionally) latency of ``model`` at ``scale`` as one flat dict.

    ``lr_size`` overrides the protocol size (then ``input`` is 'custom'); ``latency_size`` lets latency run at
    a smaller input than the FLOP count (CPU), default the same size.
    """
    size = lr_size or lr_size_for(scale, ntire)
    # re-parameterisable models (SPAN) are measured as deployed: papers count the fused network
    deploy = getattr(model, "deploy", None)
    if callable(deploy):
        model = deploy()
    row: dict[str, Any] = {
        "scale": scale,
        "input": "custom" if lr_size else ("ntire256" if ntire else "hd720"),
        "lr_h": size[0],
        "lr_w": size[1],
        "params": count_params(model),
        **environment(),
    }
    if flops:
        row.update(count_flops(model, size, with_thop=thop))
    if latency:
        row.update(
            measure_latency(
                model,
                latency_size or size,
                device=device,
                dtype=dtype,
                runs=runs,
                warmup=warmup,
                channels_last=channels_last,
                compile=compile,
            )
        )
    return row
