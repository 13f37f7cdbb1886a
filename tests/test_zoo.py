"""The zoo: every registered model builds and upsamples at each of its scales; names resolve; errors list names."""

from __future__ import annotations

import pytest
import torch

from harness.zoo import UnknownModelError, build, get_spec, registry, select
from lmfn.variants import canonical_name


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_model_builds_and_upsamples(name: str) -> None:
    torch.manual_seed(0)
    spec = get_spec(name)
    for s in spec.scales:
        model = spec.builder(s).eval()
        with torch.inference_mode():
            y = model(torch.rand(1, 3, 23, 29) * spec.input_range)  # ESA (BSRN, RFDN) needs >= ~20 px
        assert y.shape == (1, 3, 23 * s, 29 * s), (name, s)
        assert torch.isfinite(y).all()


def test_plain_ifm_patterns_resolve_to_the_default_scheme() -> None:
    assert get_spec("lka-msm-ifm").name == "lka-msm-ifm@mr"
    assert get_spec("LKA-IFM").name == "lka-ifm@mr"
    assert get_spec("lmfn").name == get_spec("LMFN").name == "lka-msm-ifm@mr"
    assert get_spec("lka@parallel").name == "lka"  # the scheme only matters inside IFM cells


def test_every_network_is_registered_once() -> None:
    # was: 'lmfn' and 'lka-msm-ifm@mr' were two entries of one network, so `profile --all` traced LMFN twice.
    # (lkdn, the official baseline, and lka, the trained ablation, are two roles of one architecture: kept.)
    variants = [n for n, spec in registry().items() if spec.family == "lmfn"]
    assert [canonical_name(n) for n in variants] == variants
    assert "lmfn" not in registry() and len(variants) == 3 + 4 * 4  # 3 patterns without IFM, 4 with it x 4 IFF schemes


def test_select_by_pattern_in_zoo_order() -> None:
    assert select(["lka-msm*"]) == ["lka-msm", *(f"lka-msm-ifm@{s}" for s in ("cascade", "parallel", "mr", "mr-cross"))]
    assert select(["lmfn", "lka-msm-ifm@mr", "LKDN"]) == ["lkdn", "lka-msm-ifm@mr"]
    with pytest.raises(UnknownModelError, match="no zoo model matches"):
        select(["nothing*"])


def test_lkdn_is_the_lka_variant() -> None:
    a, b = build("lkdn", 4), build("lka", 4)
    assert list(a.state_dict()) == list(b.state_dict())
    assert [t.shape for t in a.state_dict().values()] == [t.shape for t in b.state_dict().values()]


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownModelError) as e:
        get_spec("lka-msm-ifm@sideways")
    assert "lka-msm-ifm@parallel" in str(e.value) and "bicubic" in str(e.value)


def test_user_factory_by_module_path() -> None:
    spec = get_spec("harness.bicubic_model:Bicubic")
    assert spec.family == "user" and spec.builder(3)(torch.rand(1, 3, 4, 5)).shape == (1, 3, 12, 15)
    with pytest.raises(UnknownModelError):
        get_spec("harness.bicubic_model:Nope")


def test_scale_outside_the_model_is_an_error() -> None:
    with pytest.raises(ValueError, match="x2"):
        get_spec("rfdn-aim").builder(2)
    with pytest.raises(ValueError, match="scale"):
        build("lkdn", 5)
