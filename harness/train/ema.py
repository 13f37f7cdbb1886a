"""The EMA of the weights: torch's AveragedModel holds it (state dict, ``n_averaged``); :class:`EmaUpdate` steps it."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def _ema_avg_fn(decay: float, warmup: bool) -> Callable:
    """AveragedModel multi_avg_fn: ema <- decay*ema + (1-decay)*param (torch's get_ema_multi_avg_fn), with
    an optional (1+n)/(10+n) warm-up of the decay."""

    def fn(ema_params: list[torch.Tensor], params: list[torch.Tensor], n: torch.Tensor | int) -> None:
        d = min(decay, (1 + int(n)) / (10 + int(n))) if warmup else decay
        torch._foreach_lerp_(ema_params, params, 1.0 - d)

    return fn


class EmaUpdate:
    """``AveragedModel.update_parameters``'s arithmetic (a copy at count 0, then one foreach lerp over the
    parameters and buffers) without its per-step regrouping and its reads of the device-side count (a GPU
    sync every step): the tensor lists are made once, the count is read once, at the first call (so after a
    resume it is the restored one). ``ema.n_averaged`` is still counted, for the state dict."""

    def __init__(self, ema: AveragedModel, model: nn.Module, avg_fn: Callable) -> None:
        self.ema, self.model, self.avg_fn = ema, model, avg_fn
        self._pairs: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        self._count = 0

    def __call__(self) -> None:
        if self._pairs is None:
            ema, model = self.ema.module, self.model
            self._pairs = (
                [t.detach() for t in itertools.chain(ema.parameters(), ema.buffers())],
                [t.detach() for t in itertools.chain(model.parameters(), model.buffers())],
            )
            self._count = int(self.ema.n_averaged)
        averaged, current = self._pairs
        if self._count == 0:
            torch._foreach_copy_(averaged, current)
        else:
            self.avg_fn(averaged, current, self._count)
        self.ema.n_averaged += 1
        self._count += 1
