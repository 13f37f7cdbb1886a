"""imresize against independent truth: algebra, exact sizes, and round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.resize import cubic, imresize, resize_matrix


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_constant_image_stays_constant(scale: float) -> None:
    img = np.full((23, 31, 3), 0.4375)
    out = imresize(img, scale)
    np.testing.assert_allclose(out, 0.4375, atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_linear_ramp_stays_linear_away_from_borders(scale: float) -> None:
    # Keys' cubic reproduces polynomials up to degree 2 exactly, so a ramp maps onto the ramp sampled at
    # MATLAB's coordinate u = i/s + 0.5(1 - 1/s) (1-based); only pixels whose support meets the mirror differ.
    w = 64
    ramp = np.tile(np.arange(1, w + 1, dtype=np.float64), (5, 1))
    out = imresize(ramp, scale)[0]
    i = np.arange(1, out.size + 1)
    expected = i / scale + 0.5 * (1 - 1 / scale)
    margin = int(math.ceil(4 / min(scale, 1) * max(scale, 1))) + 2
    np.testing.assert_allclose(out[margin:-margin], expected[margin:-margin], atol=1e-9)


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [
        ((7, 9), 1 / 2, (4, 5)),
        ((7, 9), 1 / 3, (3, 3)),
        ((7, 9), 1 / 4, (2, 3)),
        ((13, 11), 2, (26, 22)),
        ((13, 11), 3, (39, 33)),
        ((13, 11), 4, (52, 44)),
        ((255, 511), 1 / 4, (64, 128)),
    ],
)
def test_output_size_is_ceil(shape: tuple[int, int], scale: float, expected: tuple[int, int]) -> None:
    assert imresize(np.zeros(shape), scale).shape == expected
    assert imresize(np.zeros((*shape, 3), np.uint8), scale).shape == (*expected, 3)


def test_down_then_up_of_a_smooth_image_is_close() -> None:
    yy, xx = np.mgrid[0:96, 0:128] / 96.0
    smooth = 0.5 + 0.25 * np.sin(2 * np.pi * xx * 0.7) * np.cos(2 * np.pi * yy * 0.5)
    for s in (2, 3, 4):
        back = imresize(imresize(smooth, 1 / s), s)[: smooth.shape[0], : smooth.shape[1]]
        err = np.abs(back - smooth)[8:-8, 8:-8].max()
        assert err < 0.01 * s, (s, err)


def test_rows_of_the_matrix_sum_to_one_and_kernel_is_keys() -> None:
    m = resize_matrix(17, 6, 1 / 3)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    # Keys (a=-0.5): interpolating at integers, zero at +-1 and +-2, known value at 0.5
    np.testing.assert_allclose(cubic(np.array([0.0, 1.0, 2.0, 0.5])), [1.0, 0.0, 0.0, 0.5625])


def test_uint8_in_uint8_out_rounded() -> None:
    img = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out = imresize(img, 1 / 2)
    ref = np.clip(np.round(imresize(img.astype(np.float64), 1 / 2)), 0, 255)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)


def test_mirror_padding_is_symmetric_with_edge_repeated() -> None:
    # upscaling a 2-pixel signal: with symmetric padding [b a | a b | b a] the first output pixel mixes only
    # a and b, and a left-right flip of the input flips the output exactly
    sig = np.array([[0.0, 1.0]])
    out = imresize(sig, 4)[0]
    np.testing.assert_allclose(out, imresize(sig[:, ::-1], 4)[0][::-1], atol=1e-12)
    assert out.min() >= -0.2 and out.max() <= 1.2
