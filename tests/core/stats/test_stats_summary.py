"""Sufficient statistics: agreement with numpy, merging, and careful numerics."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from core.stats import BinaryStats, ContinuousStats


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("size", [2, 7, 1000])
def test_continuous_matches_numpy(seed: int, size: int) -> None:
    x = np.random.default_rng(seed).normal(50.0, 3.0, size)
    s = ContinuousStats.from_values(x)
    assert s.n == size
    assert s.mean == pytest.approx(np.mean(x), rel=1e-12)
    assert s.variance == pytest.approx(np.var(x, ddof=1), rel=1e-9)
    assert s.std == pytest.approx(np.std(x, ddof=1), rel=1e-9)


def test_merge_equals_concatenation() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.exponential(2.0, 300), rng.exponential(5.0, 40)
    merged = ContinuousStats.from_values(a).merge(ContinuousStats.from_values(b))
    both = np.concatenate([a, b])
    assert merged.n == 340
    assert merged.mean == pytest.approx(both.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(both.var(ddof=1), rel=1e-9)
    bm = BinaryStats(10, 3.5).merge(BinaryStats(30, 4.0))
    assert (bm.n, bm.successes) == (40, 7.5)


def test_small_and_empty_groups() -> None:
    empty = ContinuousStats.from_values([])
    assert (empty.n, empty.mean, empty.variance) == (0, 0.0, 0.0)
    one = ContinuousStats.from_values([4.2])
    assert (one.mean, one.variance) == (4.2, 0.0)
    assert BinaryStats(0, 0).rate == 0.0
    assert BinaryStats(0, 0).variance == 0.0


@pytest.mark.parametrize("value", [0.1, 1 / 3, 123.456, 1e6 + 0.1, 7e-5])
@pytest.mark.parametrize("size", [3, 10, 100_000])
def test_constant_values_have_exactly_zero_variance(value: float, size: int) -> None:
    """Cancellation noise in sum_sq - sum^2/n must not masquerade as variance (or go < 0)."""
    s = ContinuousStats.from_values(np.full(size, value))
    assert s.variance == 0.0
    assert s.std == 0.0


def test_tiny_negative_centred_sum_is_clamped() -> None:
    s = ContinuousStats(n=3, sum=0.3, sum_sq=0.03 - 1e-18)
    assert s.variance == 0.0


def test_from_moments_round_trip() -> None:
    s = ContinuousStats.from_moments(25, mean=3.5, variance=2.25)
    assert s.mean == pytest.approx(3.5, rel=1e-15)
    assert s.variance == pytest.approx(2.25, rel=1e-12)


def test_binary_rate_and_variance_with_fractional_successes() -> None:
    b = BinaryStats(n=8, successes=2.5)
    assert b.rate == 2.5 / 8
    assert b.variance == pytest.approx(b.rate * (1 - b.rate), rel=1e-15)
    assert BinaryStats(5, 5).variance == 0.0
    assert BinaryStats.from_values([1, 0, 1, 1]).successes == 3.0


@pytest.mark.parametrize(
    "factory",
    [
        lambda: ContinuousStats(-1, 0.0, 0.0),
        lambda: ContinuousStats(2, math.nan, 1.0),
        lambda: ContinuousStats(2, 1.0, -1.0),
        lambda: BinaryStats(3, 4),
        lambda: BinaryStats(3, -0.5),
        lambda: ContinuousStats.from_moments(3, 1.0, -1.0),
    ],
)
def test_invalid_inputs_raise(factory: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        factory()
