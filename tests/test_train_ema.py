"""EmaUpdate against torch's own AveragedModel.update_parameters: the same tensors, bit for bit, every step."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from harness.train.ema import EmaUpdate, _ema_avg_fn


def test_ema_update_equals_averaged_model_bit_for_bit() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1))
    net.register_buffer("stat", torch.zeros(4))  # a float buffer: use_buffers averages it too
    fn = _ema_avg_fn(0.9, warmup=True)
    ours, ref = (
        AveragedModel(net, multi_avg_fn=fn, use_buffers=True),
        AveragedModel(net, multi_avg_fn=fn, use_buffers=True),
    )
    step = EmaUpdate(ours, net, fn)
    for i in range(6):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
            net.stat.add_(1.0)
        step()
        ref.update_parameters(net)
        for a, b in zip(ours.state_dict().values(), ref.state_dict().values(), strict=True):
            assert torch.equal(a, b), i
    assert int(ours.n_averaged) == 6


def test_ema_update_continues_from_a_restored_count() -> None:
    torch.manual_seed(1)
    net = nn.Linear(3, 2)
    fn = _ema_avg_fn(0.5, warmup=False)
    saved = AveragedModel(net, multi_avg_fn=fn, use_buffers=True)
    for _ in range(3):
        saved.update_parameters(net)
        with torch.no_grad():
            net.weight.mul_(2.0)
    resumed = AveragedModel(copy.deepcopy(net), multi_avg_fn=fn, use_buffers=True)
    resumed.load_state_dict(saved.state_dict())
    EmaUpdate(resumed, net, fn)()  # count 3 restored: a lerp, not the count-0 copy
    saved.update_parameters(net)
    for a, b in zip(resumed.state_dict().values(), saved.state_dict().values(), strict=True):
        assert torch.equal(a, b)
