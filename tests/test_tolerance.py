"""The whole-model rule of the tolerance policy (`xlayers.tolerance.compare_with_noise`): a float32
result is held to the reference's own float32 error against the float64 result."""

from __future__ import annotations

import numpy as np
import pytest

from xlayers.tolerance import NOISE_FACTOR, compare_with_noise, tolerance


def _chain(x: np.ndarray, weights: list[np.ndarray], dtype: type, fault: float = 0.0) -> np.ndarray:
    """A deep stack of tanh(x @ w) in ``dtype``; ``fault`` scales the middle layer's weights by
    ``1 + fault`` (as a wrong epsilon or a misread scale would)."""
    for index, w in enumerate(weights):
        w = w.astype(dtype).copy()
        if index == len(weights) // 2:
            w *= dtype(1 + fault)
        x = np.tanh(x.astype(dtype) @ w)
    return x


@pytest.fixture(scope="module")
def chain():
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal((61, 61)) * 1.4 / np.sqrt(61) for _ in range(40)]
    x = rng.standard_normal((7, 61))
    exact = _chain(x, weights, np.float64)
    reference = _chain(x, weights, np.float32)  # one framework's float32 rounding
    return x, weights, exact, reference


def test_another_summation_order_is_within_the_reference_noise(chain):
    x, weights, exact, reference = chain
    # the same network summed in another order: each product transposed, as another framework might
    ours = x.astype(np.float32)
    for w in weights:
        ours = np.tanh((w.astype(np.float32).T @ ours.T).T)
    result = compare_with_noise(ours, reference, exact)
    assert result.passed and result.noise > 0 and result.error > 0, result.describe("chain")
    assert result.ratio < NOISE_FACTOR


def test_a_fault_far_below_one_percent_is_caught(chain):
    x, weights, exact, reference = chain
    result = compare_with_noise(_chain(x, weights, np.float32, fault=1e-4), reference, exact)
    assert not result.passed and result.ratio > NOISE_FACTOR, result.describe("chain with a fault")


def test_the_absolute_term_covers_a_reference_without_rounding():
    exact = np.array([1.0, -2.0, 3.0])
    _, atol = tolerance("float32")
    assert compare_with_noise(exact + atol, exact, exact).passed  # scale 3: the floor is 3 atol
    assert not compare_with_noise(exact + 4 * atol, exact, exact).passed


@pytest.mark.parametrize("actual, shape", [(np.array([np.nan, 0.0]), (2,)), (np.zeros(3), (3,))])
def test_nan_and_a_shape_mismatch_fail(actual, shape):
    exact = np.zeros(2)
    result = compare_with_noise(actual, exact + 1e-7, exact)
    assert not result.passed
