"""The paired bootstrap of reports.stats against algebra and a hand-written percentile bootstrap.

The hand-written versions below draw the same indices in the same order from ``np.random.default_rng(seed)``
(one seed: one (resamples, images) draw, as scipy's paired bootstrap makes; several seeds: the seeds of every
resample, then the images within each drawn seed) and take ``np.percentile`` of loop-computed means.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from reports.stats import Interval, PairingError, paired_bootstrap, paired_differences

IMAGES = [f"img{i:02d}" for i in range(7)]


def _side(values: list[float]) -> dict[str, float]:
    return dict(zip(IMAGES, values, strict=True))


def _sides(seed: int, n_seeds: int, gap: float = 0.1) -> tuple[dict, dict]:
    """Two models on IMAGES over ``n_seeds`` seeds: b is a + gap + per-image noise."""
    rng = np.random.default_rng(seed)
    a = {s: _side(list(30 + rng.normal(0, 1, len(IMAGES)))) for s in range(n_seeds)}
    b = {s: {k: v + gap + rng.normal(0, 0.2) for k, v in a[s].items()} for s in a}
    return a, b


def _hand_images(d: np.ndarray, level: float, n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), (n, len(d)))
    boot = [np.mean([d[i] for i in row]) for row in idx]
    return list(np.percentile(boot, [50 * (1 - level), 50 * (1 + level)]))


def _hand_seeds_images(d: np.ndarray, level: float, n: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    n_seeds, n_images = d.shape
    seeds = rng.integers(0, n_seeds, (n, n_seeds))
    images = rng.integers(0, n_images, (n, n_seeds, n_images))
    boot = [np.mean([np.mean(d[seeds[r, j]][images[r, j]]) for j in range(n_seeds)]) for r in range(n)]
    return list(np.percentile(boot, [50 * (1 - level), 50 * (1 + level)]))


def _diffs(a: dict, b: dict) -> np.ndarray:
    return np.array([[a[s][k] - b[s][k] for k in sorted(a[s])] for s in sorted(a)])


def test_constant_difference_gives_a_zero_width_interval_at_that_value() -> None:
    base = [30.5, 31.25, 28.75, 33.0, 29.5, 27.25, 32.0]  # dyadic: every a - b and mean is exact
    for n_seeds in (1, 3):
        a = {s: _side([v + 0.25 + s for v in base]) for s in range(n_seeds)}
        b = {s: _side([v + s for v in base]) for s in range(n_seeds)}
        iv = paired_bootstrap(a, b, n_resamples=2000)
        assert (iv.mean, iv.lo, iv.hi) == (0.25, 0.25, 0.25) and iv.resolved
    rng = np.random.default_rng(1)  # any values: zero width up to rounding
    a = {0: _side(list(rng.normal(30, 2, 7))), 1: _side(list(rng.normal(30, 2, 7)))}
    b = {s: {k: v - 0.1 for k, v in a[s].items()} for s in a}
    iv = paired_bootstrap(a, b)
    assert iv.mean == pytest.approx(0.1, abs=1e-12) and iv.hi - iv.lo < 1e-12
    assert paired_bootstrap(a, a).resolved is False  # identical results: 0 with a zero-width interval


def test_one_seed_equals_a_hand_written_percentile_bootstrap() -> None:
    a, b = _sides(3, 1)
    for level, n, seed in ((0.95, 4000, 0), (0.9, 999, 42)):
        iv = paired_bootstrap(a, b, level=level, n_resamples=n, seed=seed)
        d = _diffs(a, b)[0]
        assert [iv.lo, iv.hi] == pytest.approx(_hand_images(d, level, n, seed), rel=1e-12)
        assert iv.mean == pytest.approx(d.mean(), rel=1e-12)
        assert (iv.method, iv.n_seeds, iv.n_images, iv.level) == ("images", 1, 7, level)


def test_several_seeds_equal_a_hand_written_two_level_bootstrap() -> None:
    a, b = _sides(5, 3)
    iv = paired_bootstrap(a, b, level=0.95, n_resamples=1500, seed=7)
    d = _diffs(a, b)
    assert [iv.lo, iv.hi] == pytest.approx(_hand_seeds_images(d, 0.95, 1500, 7), rel=1e-12)
    assert iv.mean == pytest.approx(np.mean([row.mean() for row in d]), rel=1e-12)
    assert (iv.method, iv.n_seeds, iv.n_images) == ("seeds+images", 3, 7)
    assert iv.lo < iv.mean < iv.hi


def test_the_fixed_seed_makes_it_reproducible_and_the_level_sets_the_width() -> None:
    a, b = _sides(9, 2, gap=0.3)
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)
    assert paired_bootstrap(a, b, seed=3) != paired_bootstrap(a, b, seed=4)
    wide, narrow = paired_bootstrap(a, b, level=0.99), paired_bootstrap(a, b, level=0.5)
    assert wide.lo < narrow.lo <= narrow.hi < wide.hi


def test_pairing_is_by_image_name_not_order() -> None:
    a, b = _sides(11, 2)
    names = list(IMAGES)
    random.Random(0).shuffle(names)
    shuffled_b = {s: {k: b[s][k] for k in names} for s in reversed(list(b))}  # images and seeds reordered
    assert paired_bootstrap(a, shuffled_b) == paired_bootstrap(a, b)
    assert paired_differences(a[0], shuffled_b[0])[0] == sorted(IMAGES)


def test_a_different_image_list_is_an_error_naming_the_images() -> None:
    a, b = _sides(13, 2)
    b[1] = {("other" if k == "img03" else k): v for k, v in b[1].items()}
    with pytest.raises(PairingError, match=r"only in the first: img03; only in the second: other"):
        paired_bootstrap(a, b)
    assert issubclass(PairingError, ValueError)
    a[1] = {k: v for k, v in a[1].items() if k != "img06"}  # seeds of one side on different images
    b[1] = dict(a[1])
    with pytest.raises(PairingError, match="seeds 0 and 1.*img06"):
        paired_bootstrap(a, b)


def test_only_common_seeds_count_and_bad_input_is_refused() -> None:
    a, b = _sides(17, 3)
    extra = {**a, 9: a[0]}
    assert paired_bootstrap(extra, b) == paired_bootstrap(a, b)  # seed 9 has no partner
    with pytest.raises(PairingError, match="no seed in common"):
        paired_bootstrap({5: a[0]}, b)
    with pytest.raises(PairingError, match="at least 2 images"):
        paired_bootstrap({0: {"x": 1.0}}, {0: {"x": 0.5}})
    for level in (0.0, 1.0, 95):
        with pytest.raises(ValueError, match="between 0 and 1"):
            paired_bootstrap(a, b, level=level)


def test_resolved_means_the_interval_excludes_zero() -> None:
    iv = lambda lo, hi: Interval((lo + hi) / 2, lo, hi, 0.95, 2, 5, "seeds+images")  # noqa: E731
    assert iv(0.01, 0.2).resolved and iv(-0.3, -0.1).resolved
    assert not iv(-0.1, 0.2).resolved and not iv(0.0, 0.2).resolved
