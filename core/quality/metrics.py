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
import warnings
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


@dataclass(frozen=True)
class F1Comparison:
    """One class's F1 (``label``) or macro-F1 (``label`` None) of two groups, treatment minus
    control. Each group's value and interval are exactly the quality report's
    (``quality_from_confusion``); the difference's and the relative lift's percentile intervals
    come from independent multinomial bootstraps of the two groups' confusion counts (the
    ordinary bootstrap of each group's labelled predictions). Fixed-horizon intervals: valid at
    a sample size fixed in advance, not under repeated looks."""

    label: str | None
    control_n: int
    treatment_n: int
    control: float | None
    control_ci: Interval | None
    treatment: float | None
    treatment_ci: Interval | None
    difference: float | None
    difference_ci: Interval | None
    relative_lift: float | None
    relative_lift_ci: Interval | None


def _f1_value(matrix: np.ndarray, index: int | None, present: np.ndarray) -> np.ndarray:
    """F1 of class ``index``, or the mean F1 over ``present`` classes; works on stacks."""
    f1 = f1_scores(matrix)
    if index is not None:
        return f1[..., index]
    if not present.any():
        return np.full(f1.shape[:-1], np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN draw stays NaN
        return np.nanmean(f1[..., present], axis=-1)


def f1_comparison(
    labels: Sequence[str],
    control: Sequence[Sequence[int]],
    treatment: Sequence[Sequence[int]],
    *,
    label: str | None = None,
    confidence: float = 0.95,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> F1Comparison:
    """``label``'s F1 (or macro-F1 when None) of two confusion matrices over ``labels``."""
    index = None if label is None else list(labels).index(label)
    reports = [quality_from_confusion(labels, m, confidence=confidence, draws=draws, seed=seed)
               for m in (control, treatment)]  # fmt: skip
    values: list[float | None] = []
    cis: list[Interval | None] = []
    for q in reports:
        if index is None:
            values.append(q.macro_f1)
            cis.append(q.macro_f1_ci)
        else:
            values.append(q.per_class[index].f1)
            cis.append(q.per_class[index].f1_ci)
    c, t = values
    diff = None if c is None or t is None else t - c
    lift = None if diff is None or not c else diff / c
    diff_ci = lift_ci = None
    if diff is not None and draws > 0:
        boots = []
        for matrix, rng in zip(
            (control, treatment), np.random.default_rng(seed).spawn(2), strict=True
        ):
            m = np.asarray(matrix, dtype=np.int64)
            n, k = int(m.sum()), m.shape[0]
            present = ~np.isnan(f1_scores(m))
            boot = rng.multinomial(n, (m / n).ravel(), size=draws).reshape(draws, k, k)
            boots.append(_f1_value(boot, index, present))
        delta = boots[1] - boots[0]
        diff_ci = _percentile(delta, confidence)
        if c:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(boots[0] > 0, delta / np.where(boots[0] > 0, boots[0], 1), np.nan)
            lift_ci = _percentile(ratio, confidence)
    return F1Comparison(
        label=label,
        control_n=reports[0].labelled,
        treatment_n=reports[1].labelled,
        control=c,
        control_ci=cis[0],
        treatment=t,
        treatment_ci=cis[1],
        difference=diff,
        difference_ci=diff_ci,
        relative_lift=lift,
        relative_lift_ci=lift_ci,
    )
