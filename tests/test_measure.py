"""harness.measure: params, the FLOP columns, thop, latency statistics and device / dtype selection.

Truth comes from hand arithmetic on tiny modules (each op's MACs written out), from plain fvcore / thop /
numpy as second implementations, and from the published FLOPs in ../shared/reference/published.csv.
"""

from __future__ import annotations

import csv
import math
from functools import cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import latency, measure
from harness.errors import UsageError
from lmfn.blocks import BSConvU, LayerNorm2d, pixelshuffle_upsampler

H, W = 8, 12  # tiny input for the hand counts
N = H * W


class OpMix(nn.Module):
    """conv, LayerNorm, GELU, ReLU, max-pool, nearest + bilinear resize, sigmoid, mul, linear, add, mean,
    pixel shuffle: every MAC below is written out in `expected_mix`."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = LayerNorm2d(8)
        self.act = nn.GELU()
        self.fc = nn.Linear(8, 8)
        self.tail = pixelshuffle_upsampler(8, 3, 2, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        g = torch.relu(self.act(self.norm(f)))
        p = F.max_pool2d(g, 2)
        p = F.interpolate(p, size=(H, W), mode="nearest")
        q = F.interpolate(p, size=(H, W), mode="bilinear", align_corners=False)
        a = torch.sigmoid(q) * f
        a = self.fc(a.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        y = a + f.mean(dim=1, keepdim=True)
        return self.tail(y)


def expected_mix() -> dict[str, int]:
    c = 8
    conv = c * 3 * 9 * N  # Cout * Cin * k*k per output pixel
    linear = N * c * c
    tail = 3 * 4 * c * 1 * N  # 1x1 conv to 3*2^2 channels; pixel shuffle is free
    paper = conv + linear + tail
    layer_norm = 5 * c * N  # fvcore's price with affine: 5 per element
    nearest = 1 * c * N  # fvcore: 1 per output element
    bilinear = 4 * c * N  # fvcore: 4 per output element
    fvcore = paper + layer_norm + nearest + bilinear
    gelu = relu = sigmoid = mul = c * N  # 1 per element
    max_pool = 4 * (c * N // 4)  # 2x2 window per output element
    mean = c * N  # one add per input element
    add = c * N  # broadcast add: per output element
    full = fvcore + gelu + relu + max_pool + sigmoid + mul + mean + add
    return {"paper": paper, "fvcore": fvcore, "full": full}


class ResizeMix(nn.Module):
    """The ops of the MSM cell and friends: offsets -> tanh -> grid_sample, avg / adaptive pooling, bicubic,
    softmax, variance."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Conv2d(4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = torch.tanh(self.offset(x)).permute(0, 2, 3, 1)  # (1, H, W, 2) in [-1, 1]
        s = F.grid_sample(x, grid, mode="bilinear", align_corners=True)
        a = F.avg_pool2d(s, 3, stride=1, padding=1)
        m = F.adaptive_max_pool2d(a, (2, 3))
        b = F.interpolate(m, size=(H, W), mode="bicubic", align_corners=False)
        return b.softmax(dim=1) + x.var(dim=1, keepdim=True)


def expected_resize() -> dict[str, int]:
    c = 4
    paper = 2 * c * N  # the 1x1 offset conv
    grid = 4 * c * N  # fvcore: bilinear, 4 per output element (per channel)
    fvcore = paper + grid
    tanh = 2 * N
    avg_pool = 9 * c * N  # 3x3 window per output element
    adaptive_max = c * N  # per input element
    bicubic = 16 * c * N  # 4x4 taps per output element
    softmax = 3 * c * N
    var = 2 * c * N  # per input element
    add = c * N
    full = fvcore + tanh + avg_pool + adaptive_max + bicubic + softmax + var + add
    return {"paper": paper, "fvcore": fvcore, "full": full}


def hook_conv_linear_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Second implementation of the paper column: forward hooks on Conv2d / Linear."""
    total = 0

    def hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)
        else:
            total += out.numel() * m.in_features

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


# ---------------------------------------------------------------------------------------------------------
# params and sizes


def test_params_exact() -> None:
    model = nn.Sequential(BSConvU(12, 56), LayerNorm2d(56), pixelshuffle_upsampler(56, 3, 4))
    # BSConvU: pw 12*56 (no bias) + dw 56*9 + 56; LN 2*56; upsampler 56*48*9 + 48
    by_hand = 12 * 56 + 56 * 9 + 56 + 2 * 56 + 56 * 48 * 9 + 48
    assert measure.count_params(model) == by_hand == sum(p.numel() for p in model.parameters())


def test_lr_sizes() -> None:
    assert measure.lr_size_for(2) == (360, 640)
    assert measure.lr_size_for(3) == (240, 427)  # ceil(1280/3)
    assert measure.lr_size_for(4) == (180, 320)
    assert measure.lr_size_for(4, ntire=True) == (256, 256)


# ---------------------------------------------------------------------------------------------------------
# FLOP columns on hand-countable modules


@pytest.mark.parametrize(("module", "expected"), [(OpMix, expected_mix), (ResizeMix, expected_resize)])
def test_columns_match_hand_count(module: type[nn.Module], expected) -> None:
    torch.manual_seed(0)
    model = module()
    cin = 3 if module is OpMix else 4
    r = measure.count_flops(model, (H, W), in_channels=cin)
    want = expected()
    assert r["flops_paper"] == want["paper"]
    assert r["flops_fvcore"] == want["fvcore"]
    assert r["flops_full"] == want["full"]
    assert r["unsupported_full"] == {}  # every op of these modules is priced
    # paper leaves out everything but conv/linear, and says so
    assert "aten::_convolution" not in r["uncounted_paper"]
    assert set(r["uncounted_paper"]) >= {"aten::add"}


@pytest.mark.parametrize("module", [OpMix, ResizeMix])
def test_fvcore_column_is_plain_fvcore(module: type[nn.Module]) -> None:
    from fvcore.nn import FlopCountAnalysis  # after harness.measure, which silences fvcore's import warning

    model = module().eval()
    cin = 3 if module is OpMix else 4
    x = measure._probe_input(model, (H, W), cin)
    with torch.no_grad():
        fca = FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total, unsupported = fca.total(), dict(fca.unsupported_ops())
    r = measure.count_flops(model, (H, W), in_channels=cin, with_thop=False)
    assert r["flops_fvcore"] == total
    assert r["unsupported_fvcore"] == unsupported
    assert "flops_thop" not in r


def test_paper_column_matches_conv_hooks() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        BSConvU(12, 56),
        nn.Conv2d(56, 28, 3, padding=2, dilation=2, groups=4),
        nn.Conv2d(28, 28, 3, stride=2, padding=1),
        pixelshuffle_upsampler(28, 3, 3),
    ).eval()
    x = measure._probe_input(model, (20, 30), 12)
    r = measure.count_flops(model, (20, 30), in_channels=12)
    assert r["flops_paper"] == hook_conv_linear_macs(model, x)
    assert r["flops_thop"] == r["flops_paper"]  # conv-only model: thop counts the same MACs


def test_thop_counts_conv_and_linear_macs() -> None:
    model = OpMix()
    r = measure.count_flops(model, (H, W))
    # thop hooks modules only: convs and the Linear count; LayerNorm2d / functional ops are invisible to it
    assert r["flops_thop"] == expected_mix()["paper"]
    assert "total_ops" not in model.state_dict() and "conv.total_ops" not in model.state_dict()


def test_lmfn_conv1x1_is_counted_by_every_counter() -> None:
    # lmfn's Conv1x1 runs its 1x1 as a GEMM on CPU: fvcore sees an addmm, thop a module of a conv subclass;
    # both must count c_in * c_out * H * W (hand arithmetic), like the nn.Conv2d it replaces
    from lmfn.blocks import Conv1x1

    model = nn.Sequential(Conv1x1(6, 10), nn.Conv2d(10, 3, 1))
    r = measure.count_flops(model, (H, W), in_channels=6)
    assert r["flops_paper"] == r["flops_thop"] == (6 * 10 + 10 * 3) * H * W


def test_count_flops_keeps_training_mode() -> None:
    model = OpMix().train()
    measure.count_flops(model, (H, W), with_thop=False)
    assert model.training


# ---------------------------------------------------------------------------------------------------------
# latency: statistics, loop, device / dtype


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_summary_matches_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    times = list(rng.gamma(2.0, 3.0, size=n))
    s = latency.summarize_timings(times)
    assert s["latency_ms_median"] == pytest.approx(np.median(times))
    assert s["latency_ms_p90"] == pytest.approx(np.percentile(times, 90))
    assert s["latency_ms_mean"] == pytest.approx(np.mean(times))
    assert s["latency_ms_std"] == pytest.approx(np.std(times))
    assert (s["latency_ms_min"], s["latency_ms_max"], s["latency_runs"]) == (min(times), max(times), n)


def test_timed_runs_warmup_and_count() -> None:
    calls = []
    clock = iter(range(100))

    class FakeTimer:
        synced = 0

        def __call__(self, fn) -> float:
            fn()
            return float(next(clock))

        def sync(self) -> None:
            self.synced = len(calls)

    timer = FakeTimer()
    times = latency.timed_runs(lambda: calls.append(1), timer, runs=5, warmup=3)
    assert len(calls) == 8
    assert timer.synced == 3  # synchronised after the warm-up, before the first timed run
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError):
        latency.timed_runs(lambda: None, timer, runs=0, warmup=1)


def test_dtype_device_selection() -> None:
    cpu = torch.device("cpu")
    assert latency.resolve_dtype(cpu, "fp32") is torch.float32
    assert latency.resolve_dtype(cpu, "bf16") is torch.bfloat16
    with pytest.raises(ValueError, match="fp16 latency needs CUDA"):
        latency.resolve_dtype(cpu, "fp16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        latency.resolve_dtype(cpu, "int8")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            latency.resolve_device("cuda")


@pytest.mark.parametrize(("dtype", "channels_last"), [("fp32", False), ("bf16", True)])
def test_cpu_latency_row(dtype: str, channels_last: bool) -> None:
    model = OpMix()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = latency.measure_latency(model, (H, W), dtype=dtype, runs=7, warmup=2, channels_last=channels_last)
    assert r["latency_runs"] == 7 and r["latency_warmup"] == 2
    assert 0 < r["latency_ms_min"] <= r["latency_ms_median"] <= r["latency_ms_p90"] <= r["latency_ms_max"]
    assert (r["device"], r["timer"], r["dtype"], r["peak_mem_mb"]) == ("cpu", "perf_counter", dtype, None)
    assert r["threads"] == torch.get_num_threads() and r["device_name"]
    # the caller's model is untouched (no cast, no memory-format change)
    assert all(torch.equal(before[k], v) and v.dtype == torch.float32 for k, v in model.state_dict().items())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_cuda_latency_row(dtype: str) -> None:
    r = latency.measure_latency(OpMix(), (64, 64), device="cuda", dtype=dtype, runs=10, warmup=3)
    assert r["timer"] == "cuda_event" and r["device"] == "cuda"
    assert r["peak_mem_mb"] > 0 and r["latency_ms_median"] > 0


def test_profile_model_row() -> None:
    r = measure.profile_model(OpMix(), 2, lr_size=(H, W), runs=3, warmup=1)
    assert r["input"] == "custom" and (r["lr_h"], r["lr_w"]) == (H, W)
    assert r["params"] == measure.count_params(OpMix())
    assert r["flops_full"] == expected_mix()["full"]
    assert r["torch_version"] == torch.__version__ and r["fvcore_version"] and r["thop_version"]
    assert r["latency_runs"] == 3
    assert measure.format_ops({"aten::gelu": 3, "aten::add": 5}) == "add x5, gelu x3"


def test_ntire_mode_counts_256_lr() -> None:
    model = pixelshuffle_upsampler(3, 3, 4)
    r = measure.profile_model(model, 4, ntire=True, latency=False)
    assert (r["input"], r["lr_h"], r["lr_w"]) == ("ntire256", 256, 256)
    assert r["flops_paper"] == 48 * 3 * 9 * 256 * 256 == r["flops_thop"]
    hd = measure.profile_model(model, 4, latency=False, thop=False)
    assert (hd["input"], hd["lr_h"], hd["lr_w"]) == ("hd720", 180, 320)
    assert hd["flops_paper"] == 48 * 3 * 9 * 180 * 320


# ---------------------------------------------------------------------------------------------------------
# zoo models against published FLOPs (x4 input 180x320; x2 360x640; x3 240x427)

PUBLISHED = {"lkdn": "LKDN", "vapsr": "VapSR", "bsrn": "BSRN", "imdn": "IMDN", "safmn": "SAFMN"}


def _published_rows(csv_path) -> list[tuple[str, int, str]]:
    rows = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            for zoo_name, pub in PUBLISHED.items():
                if row["model"] == pub and row["flops_g"]:
                    rows.append((zoo_name, int(row["scale"]), row["flops_g"]))
    return rows


@cache
def _zoo_flops(name: str, scale: int) -> dict:
    from harness import zoo

    torch.manual_seed(0)
    return measure.count_flops(zoo.build(name, scale), measure.lr_size_for(scale), with_thop=False)


def _close_to_published(value: float, published: str) -> bool:
    pub = float(published)
    decimals = len(published.split(".")[1]) if "." in published else 0
    # within 2%, or within the rounding of the published figure (whole G: +-0.5 G)
    return abs(value - pub) <= max(0.02 * pub, 0.5 * 10**-decimals + 1e-9)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "scale"), [(n, s) for n in PUBLISHED for s in (2, 3, 4)])
def test_paper_flops_vs_published(name: str, scale: int, shared) -> None:
    rows = {(n, s): g for n, s, g in _published_rows(shared / "reference" / "published.csv")}
    if (name, scale) not in rows:
        pytest.skip(f"no published FLOPs for {name} x{scale}")
    r = _zoo_flops(name, scale)
    got = r["flops_paper"] / 1e9
    assert _close_to_published(got, rows[name, scale]), (
        f"{name} x{scale}: {got:.2f} G vs {rows[name, scale]} G"
    )
    assert r["flops_paper"] <= r["flops_fvcore"] <= r["flops_full"]


# Known counts (DESIGN.md and the official scripts, see the module docstring of harness/measure.py):
# fvcore gives 18.35 G for LKDN x4; SAFMN counted with fvcore's defaults (published 14 G).
@pytest.mark.slow
def test_lkdn_fvcore_known_count() -> None:
    r = _zoo_flops("lkdn", 4)
    assert round(r["flops_fvcore"] / 1e9, 2) == 18.35


@pytest.mark.slow
def test_safmn_fvcore_column_rounds_to_published(shared) -> None:
    rows = {(n, s): g for n, s, g in _published_rows(shared / "reference" / "published.csv")}
    r = _zoo_flops("safmn", 4)
    assert round(r["flops_fvcore"] / 1e9) == float(rows["safmn", 4])


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_lmfn_cells_fully_priced(kernel_size: int) -> None:
    """The MSM cell (pooling halvings, snake conv, nearest copies) leaves nothing unpriced in `full`, in both
    of DSConv's forms: the three-pixel blend (K=3, LMFN's) and grid_sample (K=5)."""
    from lmfn.variants import build_variant

    torch.manual_seed(0)
    net = build_variant("lmfn", 4, kernel_size=kernel_size)
    r = measure.count_flops(net, (24, 32), with_thop=False)
    assert r["unsupported_full"] == {}
    sampling_op = "aten::addcmul_" if kernel_size == 3 else "aten::grid_sampler"
    assert r["flops_by_op"].get(sampling_op, 0) > 0
    assert r["flops_paper"] < r["flops_fvcore"] < r["flops_full"]
