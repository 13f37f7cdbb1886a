"""Architectures outside the zoo, through spandrel (the loader behind chaiNNer and traiNNer-redux).

:func:`spandrel_network` turns a state dict spandrel recognises into :class:`SpandrelNet`, an ``nn.Module``
like any zoo network: it takes and returns RGB in [0, 1] at the descriptor's scale and honours the
descriptor's size requirements by padding (reflect, then replicate beyond what reflect allows, on the bottom
and right, as spandrel does) and cropping the output back. So params, FLOPs, latency and PSNR of a foreign
network go through the same code as ours.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import CheckpointMismatchError, UnknownArchitectureError, UsageError
from harness.settings import SCALES


class SpandrelNet(nn.Module):
    """A spandrel ``ImageModelDescriptor``'s network with its size requirements applied in ``forward``."""

    def __init__(self, descriptor: object) -> None:
        super().__init__()
        self.net = descriptor.model
        self.arch_id = str(descriptor.architecture.id)
        self.arch_name = str(descriptor.architecture.name)
        self.upscale = int(descriptor.scale)
        req = descriptor.size_requirements
        self.multiple_of, self.minimum, self.square = int(req.multiple_of), int(req.minimum), bool(req.square)
        # a few architectures (IPT, denoisers) are called through the descriptor's own function
        self._call = getattr(descriptor, "_call_fn", None) or (lambda model, x: model(x))

    def padding(self, h: int, w: int) -> tuple[int, int]:
        """(pad_h, pad_w) that bring an h x w input to the size requirements (0, 0 when it meets them)."""

        def up(v: int) -> int:
            v = max(v, self.minimum)
            return -(-v // self.multiple_of) * self.multiple_of

        th, tw = up(h), up(w)
        if self.square:
            th = tw = max(th, tw)
        return th - h, tw - w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = self.padding(h, w)
        if ph or pw:
            rh, rw = min(ph, h - 1), min(pw, w - 1)  # reflect cannot pad more than size - 1
            x = F.pad(x, (0, rw, 0, rh), mode="reflect") if rh or rw else x
            x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate") if ph > rh or pw > rw else x
        y = self._call(self.net, x)
        return y[..., : h * self.upscale, : w * self.upscale]

    def extra_repr(self) -> str:
        return f"arch={self.arch_id}, scale={self.upscale}, multiple_of={self.multiple_of}, minimum={self.minimum}"


def spandrel_version() -> str:
    import spandrel

    return str(spandrel.__version__)


def spandrel_descriptor(sd: Mapping[str, torch.Tensor]) -> object | None:
    """spandrel's descriptor for ``sd``, or None when spandrel does not recognise it."""
    from spandrel import MAIN_REGISTRY, UnsupportedModelError

    try:
        return MAIN_REGISTRY.load(dict(sd))
    except UnsupportedModelError:
        return None
    except Exception as e:  # recognised by its keys, but the tensors do not build the network it names
        raise CheckpointMismatchError(
            f"spandrel recognised the keys but could not load them: {type(e).__name__}: {e}"
        ) from None


def spandrel_network(sd: Mapping[str, torch.Tensor], scale: int | None = None) -> SpandrelNet:
    """The :class:`SpandrelNet` for ``sd``; an unknown or non-SR state dict is a one-line error."""
    desc = spandrel_descriptor(sd)
    if desc is None:
        raise UnknownArchitectureError("spandrel does not recognise this state dict either")
    from spandrel import ImageModelDescriptor

    if not isinstance(desc, ImageModelDescriptor) or desc.input_channels != 3 or desc.output_channels != 3:
        raise UsageError(
            f"spandrel:{desc.architecture.id} is not an RGB image-to-image model; only SR models are measured"
        )
    if desc.scale not in SCALES:
        raise UsageError(
            f"spandrel:{desc.architecture.id} upscales x{desc.scale}; the benchmark scales are {list(SCALES)}"
        )
    if scale is not None and desc.scale != scale:
        raise UsageError(f"checkpoint is spandrel:{desc.architecture.id} x{desc.scale}, not x{scale}")
    return SpandrelNet(desc.eval())


def describe(net: SpandrelNet) -> dict:
    """What ``inspect`` prints about a spandrel network."""
    return {"arch": net.arch_name, "multiple_of": net.multiple_of, "minimum": net.minimum, "square": net.square,
            "spandrel": spandrel_version()}  # fmt: skip
