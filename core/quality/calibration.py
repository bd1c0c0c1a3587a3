"""Reliability-diagram bins and the expected calibration error, from counts per bin.

A bin holds the labelled predictions whose top-class confidence fell in it: how many, the sum
of their confidences and how many were right. ECE = sum over bins of (n_b / N) * |accuracy_b -
mean confidence_b|; MCE is the largest such gap. Equal-width bins, as in Guo et al. (2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.quality.metrics import Interval, wilson


@dataclass(frozen=True)
class BinCounts:
    n: int
    confidence_sum: float
    correct: int


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    n: int
    mean_confidence: float | None
    accuracy: float | None
    accuracy_ci: Interval | None


@dataclass(frozen=True)
class Calibration:
    bins: tuple[CalibrationBin, ...]
    labelled: int
    ece: float | None
    mce: float | None


def calibration_from_bins(counts: Sequence[BinCounts], confidence: float = 0.95) -> Calibration:
    """``counts[i]`` covers [i / B, (i + 1) / B), the last bin including 1.0."""
    width = 1.0 / len(counts)
    total = sum(c.n for c in counts)
    bins, ece, mce = [], 0.0, 0.0
    for i, c in enumerate(counts):
        if c.n < 0 or not 0 <= c.correct <= c.n:
            raise ValueError(f"bin {i}: need 0 <= correct <= n, got {c.correct} of {c.n}")
        mean = c.confidence_sum / c.n if c.n else None
        acc = c.correct / c.n if c.n else None
        if c.n:
            gap = abs(acc - mean)  # type: ignore[operator]
            ece += c.n / total * gap
            mce = max(mce, gap)
        bins.append(
            CalibrationBin(
                low=i * width,
                high=(i + 1) * width,
                n=c.n,
                mean_confidence=mean,
                accuracy=acc,
                accuracy_ci=wilson(c.correct, c.n, confidence),
            )
        )
    return Calibration(
        bins=tuple(bins),
        labelled=total,
        ece=ece if total else None,
        mce=mce if total else None,
    )
