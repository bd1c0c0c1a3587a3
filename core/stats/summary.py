"""Sufficient statistics for experiment metrics.

Every test in :mod:`core.stats` works on these small immutable summaries instead of raw
observations, so results can be computed from database aggregates (``COUNT``, ``SUM``,
``SUM(x*x)``) and merged across shards or time buckets by simple addition.

Conventions: an empty group (``n == 0``) has mean/rate ``0.0``; a group with fewer than two
observations has variance ``0.0``. Callers must check ``n`` before trusting these values; the
tests in :mod:`core.stats.frequentist` and :mod:`core.stats.sequential` do so and flag it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

__all__ = ["BinaryStats", "ContinuousStats", "MetricStats"]

# Relative size of ``sum_sq - sum**2 / n`` (w.r.t. ``sum_sq``) below which the centred sum of
# squares is indistinguishable from floating-point cancellation error and treated as exactly 0.
# A genuine spread that small means a coefficient of variation below ~1e-6, which sums of
# squares cannot resolve anyway.
_CANCELLATION_RTOL = 1e-12


def _as_array(values: Iterable[float] | np.ndarray) -> np.ndarray:
    seq = values if isinstance(values, np.ndarray) else list(values)
    return np.asarray(seq, dtype=np.float64).ravel()


@dataclass(frozen=True)
class ContinuousStats:
    """Count, sum and sum of squares of a real-valued metric in one variant."""

    n: int
    sum: float
    sum_sq: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if not (math.isfinite(self.sum) and math.isfinite(self.sum_sq)):
            raise ValueError("sum and sum_sq must be finite")
        if self.sum_sq < 0:
            raise ValueError(f"sum_sq must be >= 0, got {self.sum_sq}")

    @classmethod
    def from_values(cls, values: Iterable[float] | np.ndarray) -> ContinuousStats:
        """Summarise raw observations (float64, numpy pairwise summation of x and x*x)."""
        arr = _as_array(values)
        return cls(n=int(arr.size), sum=float(arr.sum()), sum_sq=float((arr * arr).sum()))

    @classmethod
    def from_moments(cls, n: int, mean: float, variance: float) -> ContinuousStats:
        """Build from a count, a mean and a sample variance (ddof=1)."""
        if variance < 0:
            raise ValueError(f"variance must be >= 0, got {variance}")
        centred = variance * (n - 1) if n >= 2 else 0.0
        return cls(n=n, sum=mean * n, sum_sq=centred + n * mean * mean)

    @property
    def mean(self) -> float:
        """Arithmetic mean; 0.0 for an empty group."""
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0.0 when ``n < 2``.

        Computed as ``(sum_sq - sum * mean) / (n - 1)``; negative or cancellation-sized
        results (relative to ``sum_sq``) are clamped to exactly 0.
        """
        if self.n < 2:
            return 0.0
        centred = self.sum_sq - self.sum * (self.sum / self.n)
        if centred <= _CANCELLATION_RTOL * self.sum_sq:
            return 0.0
        return centred / (self.n - 1)

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1)."""
        return math.sqrt(self.variance)

    def merge(self, other: ContinuousStats) -> ContinuousStats:
        """Pool two disjoint samples of the same metric."""
        return ContinuousStats(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)


@dataclass(frozen=True)
class BinaryStats:
    """Number of units and (possibly fractional, e.g. weighted) successes in one variant."""

    n: int
    successes: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if not math.isfinite(self.successes) or not 0 <= self.successes <= self.n:
            raise ValueError(f"successes must lie in [0, n={self.n}], got {self.successes}")

    @classmethod
    def from_values(cls, values: Iterable[float] | np.ndarray) -> BinaryStats:
        """Summarise 0/1 (or [0, 1]-weighted) outcomes."""
        arr = _as_array(values)
        return cls(n=int(arr.size), successes=float(arr.sum()))

    @property
    def rate(self) -> float:
        """Success rate; 0.0 for an empty group."""
        return self.successes / self.n if self.n > 0 else 0.0

    @property
    def mean(self) -> float:
        """Alias of :attr:`rate` so both summaries share an interface."""
        return self.rate

    @property
    def variance(self) -> float:
        """Bernoulli variance ``p(1 - p)`` (the population form used by z-tests)."""
        p = self.rate
        return max(p * (1.0 - p), 0.0)

    @property
    def std(self) -> float:
        """Square root of :attr:`variance`."""
        return math.sqrt(self.variance)

    def merge(self, other: BinaryStats) -> BinaryStats:
        """Pool two disjoint samples of the same metric."""
        return BinaryStats(self.n + other.n, self.successes + other.successes)


MetricStats = ContinuousStats | BinaryStats
