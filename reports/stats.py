"""Paired bootstrap intervals for a PSNR difference between two models evaluated on the same images.

Pure (numpy and scipy.stats only). Both sides are ``seed -> {image name: PSNR}``; values are paired by image
name, never by position, so two result lists in different orders give the same answer and two different image
lists are an error. The statistic is the mean over seeds of the mean over images of ``a - b``. Its interval is
a percentile bootstrap:

- several seeds (ablation grids): resample the seeds both sides have (with replacement), then, within each
  drawn seed, resample its images; the same drawn images on both sides, i.e. resample per-image differences.
  Our own two-level numpy resampling, vectorised over resamples (scipy's bootstrap has no nested resampling).
- one seed: resample images only (``scipy.stats.bootstrap``, paired); run-to-run noise is then not in the
  interval, and ``method`` says so.

The bootstrap generator is ``np.random.default_rng(seed)``: a fixed seed makes a report reproducible.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Interval", "PairingError", "paired_bootstrap", "paired_differences"]

SeedImages = Mapping[Hashable, Mapping[str, float]]  # seed -> image name -> PSNR
_GATHER = 1 << 21  # resampled values gathered at once (the index draw stays whole: chunked draws of
# numpy's bounded integers are not the same stream, and the interval must not depend on a chunk size)


class PairingError(ValueError):
    """The two sides do not cover the same images (or seeds), so no paired difference exists."""


@dataclass(frozen=True)
class Interval:
    """A paired mean difference ``a - b`` with its bootstrap interval at ``level``."""

    mean: float
    lo: float
    hi: float
    level: float
    n_seeds: int
    n_images: int
    method: str  # "seeds+images" | "images" (one seed: the interval is over images only)

    @property
    def resolved(self) -> bool:
        """The interval excludes 0 (an interval that contains 0 is "not resolved", not "no difference")."""
        return self.lo > 0 or self.hi < 0


def _names(images: set[str]) -> str:
    return ", ".join(sorted(images)[:5]) + (f" and {len(images) - 5} more" if len(images) > 5 else "")


def _differ(a: set[str], b: set[str], what: str) -> PairingError:
    parts = [f"only in {side}: {_names(s)}" for side, s in (("the first", a - b), ("the second", b - a)) if s]
    return PairingError(f"{what}: not on the same images ({'; '.join(parts)})")


def paired_differences(
    a: Mapping[str, float], b: Mapping[str, float], what: str = "the two results"
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(image names sorted, a's values, b's values) paired by name; PairingError naming images that differ."""
    if set(a) != set(b):
        raise _differ(set(a), set(b), what)
    names = sorted(a)
    return names, np.array([a[n] for n in names], float), np.array([b[n] for n in names], float)


def _matrices(a: SeedImages, b: SeedImages) -> tuple[list, np.ndarray, np.ndarray]:
    """(common seeds, a as seeds x images, b likewise); every seed must cover the same images."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise PairingError(f"no seed in common (first: {sorted(a)}, second: {sorted(b)})")
    names, rows_a, rows_b = None, [], []
    for s in seeds:
        n, va, vb = paired_differences(a[s], b[s], f"seed {s}")
        if names is not None and n != names:
            raise _differ(set(names), set(n), f"seeds {seeds[0]} and {s}")
        names = n
        rows_a.append(va)
        rows_b.append(vb)
    return seeds, np.stack(rows_a), np.stack(rows_b)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def _images_interval(
    a: np.ndarray, b: np.ndarray, level: float, n_resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    res = stats.bootstrap(
        (a, b),
        _mean_diff,
        paired=True,  # the same resampled images on both sides
        vectorized=True,
        method="percentile",
        confidence_level=level,
        n_resamples=n_resamples,
        random_state=rng,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _seeds_images_interval(
    d: np.ndarray, level: float, n_resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Two-level percentile bootstrap of ``d`` (seeds x images): seeds first, then images within each."""
    n_seeds, n_images = d.shape
    seeds = rng.integers(0, n_seeds, (n_resamples, n_seeds))  # the drawn seeds of every resample
    images = rng.integers(0, n_images, (n_resamples, n_seeds, n_images))  # images within each drawn seed
    boot = np.empty(n_resamples)
    step = max(1, _GATHER // (n_seeds * n_images))
    for k in range(0, n_resamples, step):
        part = slice(k, k + step)
        boot[part] = d[seeds[part, :, None], images[part]].mean(axis=2).mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.percentile(boot, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def paired_bootstrap(
    a: SeedImages, b: SeedImages, level: float = 0.95, n_resamples: int = 10_000, seed: int = 0
) -> Interval:
    """Mean over seeds of the mean per-image ``a - b`` with its percentile bootstrap interval at ``level``.

    ``a`` and ``b`` map seed -> {image: PSNR}; only the seeds both have count. Several seeds: seeds and then
    images are resampled; one seed: images only (``method`` says which)."""
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    seeds, va, vb = _matrices(a, b)
    if va.shape[1] < 2:
        raise PairingError(f"a bootstrap over images needs at least 2 images, got {va.shape[1]}")
    d = va - vb
    rng = np.random.default_rng(seed)
    if len(seeds) == 1:
        lo, hi = _images_interval(va[0], vb[0], level, n_resamples, rng)
        method = "images"
    else:
        lo, hi = _seeds_images_interval(d, level, n_resamples, rng)
        method = "seeds+images"
    mean = float(d.mean(axis=1).mean())
    return Interval(mean, lo, hi, level, len(seeds), d.shape[1], method)
