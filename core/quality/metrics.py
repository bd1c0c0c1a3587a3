"""Classification quality from a confusion matrix of counts: pure functions, no SQL, no torch.

Rows are true labels, columns predicted classes (scikit-learn's convention). Rates (precision,
recall, accuracy = micro-F1, label coverage) get Wilson score intervals; F1 per class and
macro-F1 get percentile intervals from a multinomial bootstrap of the confusion counts, which is
the ordinary bootstrap of the labelled predictions (resampling them only moves counts between
cells). A rate with a zero denominator is ``None``, not 0: "no owl was predicted" is not
"precision on owls is 0".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

BOOTSTRAP_DRAWS = 2000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class ClassQuality:
    label: str
    support: int  # labelled predictions whose true label is this class
    predicted: int  # labelled predictions of this class
    true_positives: int
    precision: float | None
    precision_ci: Interval | None
    recall: float | None
    recall_ci: Interval | None
    f1: float | None
    f1_ci: Interval | None


@dataclass(frozen=True)
class QualityMetrics:
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]  # [true][predicted]
    labelled: int
    accuracy: float | None  # equals micro-F1 for single-label classification
    accuracy_ci: Interval | None
    macro_f1: float | None
    macro_f1_ci: Interval | None
    per_class: tuple[ClassQuality, ...]
    confidence_level: float

    @property
    def micro_f1(self) -> float | None:
        return self.accuracy

    @property
    def micro_f1_ci(self) -> Interval | None:
        return self.accuracy_ci


@lru_cache(maxsize=16)
def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval for a binomial proportion; None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within 0..{n}, got {successes}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def f1_scores(matrix: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2 TP / (2 TP + FP + FN) over the last two axes; NaN where the class
    appears neither as a true label nor as a prediction. Works on a stack of matrices."""
    tp = np.diagonal(matrix, axis1=-2, axis2=-1).astype(float)
    den = matrix.sum(axis=-1) + matrix.sum(axis=-2)  # support + predicted = 2TP + FN + FP
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def _percentile(draws: np.ndarray, confidence: float) -> Interval | None:
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(low), float(high))


def quality_from_confusion(
    labels: Sequence[str],
    confusion: Sequence[Sequence[int]],
    *,
    confidence: float = 0.95,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> QualityMetrics:
    """Every quality number with its interval. ``seed`` makes the bootstrap repeatable, so the
    same counts always show the same interval."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    matrix = np.asarray(confusion, dtype=np.int64)
    k = len(labels)
    if matrix.shape != (k, k):
        raise ValueError(f"confusion must be {k}x{k} for {k} labels, got {matrix.shape}")
    if (matrix < 0).any():
        raise ValueError("confusion counts must not be negative")
    n = int(matrix.sum())
    f1 = f1_scores(matrix)
    present = ~np.isnan(f1)
    f1_draws = None
    if n > 0 and draws > 0:
        rng = np.random.default_rng(seed)
        boot = rng.multinomial(n, (matrix / n).ravel(), size=draws).reshape(draws, k, k)
        f1_draws = f1_scores(boot)
    per_class = []
    for i, label in enumerate(labels):
        tp, support, predicted = int(matrix[i, i]), int(matrix[i].sum()), int(matrix[:, i].sum())
        per_class.append(
            ClassQuality(
                label=label,
                support=support,
                predicted=predicted,
                true_positives=tp,
                precision=_ratio(tp, predicted),
                precision_ci=wilson(tp, predicted, confidence),
                recall=_ratio(tp, support),
                recall_ci=wilson(tp, support, confidence),
                f1=None if np.isnan(f1[i]) else float(f1[i]),
                f1_ci=None
                if f1_draws is None or not present[i]
                else _percentile(f1_draws[:, i], confidence),
            )
        )
    macro = float(f1[present].mean()) if present.any() else None
    macro_ci = None
    if f1_draws is not None and present.any():
        # Average over the classes present in the data, in every draw alike.
        macro_ci = _percentile(np.nanmean(f1_draws[:, present], axis=1), confidence)
    correct = int(np.trace(matrix))
    return QualityMetrics(
        labels=tuple(labels),
        confusion=tuple(tuple(int(c) for c in row) for row in matrix),
        labelled=n,
        accuracy=_ratio(correct, n),
        accuracy_ci=wilson(correct, n, confidence),
        macro_f1=macro,
        macro_f1_ci=macro_ci,
        per_class=tuple(per_class),
        confidence_level=confidence,
    )
