"""fvcore operator handles for what fvcore's defaults leave out, and the op sets that define our FLOP columns.

Every handle counts multiply-accumulates (MACs) the way fvcore does: one fused multiply-add is one op, and an
element-wise op costs one op per output element. The per-op costs below are choices (no counting convention
agrees on them); each is stated where it is made. Ops that fvcore already counts keep fvcore's handle, so the
`full` column is always fvcore's defaults plus these extras, never a different price for the same op.

A handle receives the traced node's ``inputs`` / ``outputs`` (``torch._C.Value``) and returns a number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # fvcore's import calls torch.jit.script, deprecated in torch 2.x
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS  # fvcore's default table (private but stable)
    from fvcore.nn.jit_analysis import _IGNORED_OPS

Handle = Callable[[list[Any], list[Any]], float]

# Conv / linear / matmul: what papers count. aten::scaled_dot_product_attention is two matmuls (QK^T, AV).
PAPER_OPS: frozenset[str] = frozenset(
    {
        "aten::_convolution",
        "aten::linear",
        "aten::addmm",
        "aten::matmul",
        "aten::mm",
        "aten::bmm",
        "aten::einsum",
        "aten::scaled_dot_product_attention",
    }
)

# fvcore's default table and the ops it treats as free (its unsupported_ops() never lists those)
FVCORE_OPS: frozenset[str] = frozenset(_DEFAULT_SUPPORTED_OPS)
FVCORE_IGNORED: frozenset[str] = frozenset(_IGNORED_OPS)


def _numel(value: Any) -> int:
    """Element count of a traced tensor value; 0 for scalars (shape arithmetic also traces as aten::add)."""
    if not value.isCompleteTensor():
        return 0
    return math.prod(value.type().sizes())


def _ints(value: Any) -> list[int] | None:
    """A constant int or int list argument (kernel_size, ...) of a traced node, or None if not constant."""
    ival = value.toIValue()
    if ival is None and value.node().kind() == "prim::ListConstruct":
        ival = [v.toIValue() for v in value.node().inputs()]
    if ival is None:
        return None
    if isinstance(ival, int):
        return [ival]
    if isinstance(ival, Iterable) and all(isinstance(i, int) for i in ival):
        return list(ival)
    return None


def per_output(cost: float) -> Handle:
    """``cost`` ops per element of the first output."""

    def handle(inputs: list[Any], outputs: list[Any]) -> float:
        return cost * _numel(outputs[0])

    return handle


def per_input(cost: float) -> Handle:
    """``cost`` ops per element of the first input (reductions: every input element is added once)."""

    def handle(inputs: list[Any], outputs: list[Any]) -> float:
        return cost * _numel(inputs[0])

    return handle


def _window_pool(inputs: list[Any], outputs: list[Any]) -> float:
    # max/avg pooling: one compare (max) or add (avg) per window tap per output element; when the kernel size
    # is not a trace constant, fall back to one op per input element (exact for non-overlapping windows)
    kernel = _ints(inputs[1])
    if not kernel:
        return float(_numel(inputs[0]))
    if len(kernel) == 1:
        kernel = kernel * 2
    return float(math.prod(kernel) * _numel(outputs[0]))


def _sdpa(inputs: list[Any], outputs: list[Any]) -> float:
    # softmax(Q K^T) V: L*S*E MACs for Q K^T plus L*S*Ev for the product with V, per batch x head
    q, k, v = (x.type().sizes() if x.isCompleteTensor() else None for x in inputs[:3])
    if q is None or k is None or v is None:
        return 0.0
    batch = math.prod(q[:-2])
    return float(batch * q[-2] * k[-2] * (q[-1] + v[-1]))


# Element-wise arithmetic and activations: 1 op per output element. GELU / sigmoid / tanh / exp really cost
# several instructions each; we charge 1 like an add, so `full` stays a MAC-like count that is comparable
# across models rather than a guess at instruction counts.
_ONE_PER_ELEMENT = (
    "add add_ sub sub_ rsub mul mul_ div div_ neg neg_ abs reciprocal square pow sqrt rsqrt exp log "
    "maximum minimum clamp clamp_ clamp_min clamp_max hardtanh hardtanh_ "
    "relu relu_ relu6 leaky_relu leaky_relu_ elu elu_ gelu gelu_ silu silu_ mish sigmoid sigmoid_ tanh tanh_ "
    "hardswish hardswish_ hardsigmoid hardsigmoid_ softplus prelu sin cos cumsum"
).split()

# Pure data movement: free (fvcore does not list them as ignored, so without a handle they would clutter
# the unsupported list). pixel_shuffle is a reshape + permute.
_FREE = (
    "pixel_shuffle pixel_unshuffle clone empty_like unflatten pad reflection_pad2d replication_pad2d repeat expand_as "
    "im2col col2im flip diagonal ones_like rand rand_like randn randn_like linspace meshgrid broadcast_tensors "
    "movedim as_strided zero_ index_fill_ "
    # comparisons / masks: free, as fvcore already treats eq / ge / gt
    "lt le ne __or__ __xor__ logical_and logical_or logical_not"
).split()

EXTRA_HANDLES: dict[str, Handle] = {
    **{f"aten::{op}": per_output(1) for op in _ONE_PER_ELEMENT},
    **{f"aten::{op}": per_output(0) for op in _FREE},
    # reductions: one add per input element; variance/std/norm also square each element, so 2
    "aten::mean": per_input(1),
    "aten::sum": per_input(1),
    "aten::amax": per_input(1),
    "aten::amin": per_input(1),
    "aten::var": per_input(2),
    "aten::std": per_input(2),
    "aten::var_mean": per_input(2),
    "aten::norm": per_input(2),
    "aten::linalg_vector_norm": per_input(2),
    # softmax: exp, running sum, divide
    "aten::softmax": per_output(3),
    "aten::log_softmax": per_output(3),
    "aten::_softmax": per_output(3),
    # pooling (fvcore counts adaptive_avg_pool2d 1 per input element; the max version is priced alike)
    "aten::max_pool2d": _window_pool,
    "aten::avg_pool2d": _window_pool,
    "aten::adaptive_max_pool2d": per_input(1),
    # bicubic resize: a 4x4 tap window per output element (fvcore prices nearest 1 and bilinear 4 per output;
    # grid_sample as fvcore does: bilinear, 4 MACs per output element per channel)
    "aten::upsample_bicubic2d": per_output(16),
    "aten::grid_sampler_2d": per_output(4),
    "aten::scaled_dot_product_attention": _sdpa,
    # input + value * t1 * t2: one multiply plus one multiply-add
    "aten::addcmul": per_output(2),
    "aten::addcmul_": per_output(2),
}

# The full table: fvcore's defaults win where both define an op (one price per op in every column).
FULL_HANDLES: dict[str, Handle] = {**EXTRA_HANDLES, **_DEFAULT_SUPPORTED_OPS}
