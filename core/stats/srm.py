"""Sample ratio mismatch (SRM) check: Pearson chi-square goodness of fit of assignment counts.

A mismatch between the configured traffic split and the observed unit counts signals a broken
assignment or logging pipeline, which invalidates every metric comparison of the experiment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import stats

__all__ = ["SrmResult", "sample_ratio_mismatch"]


@dataclass(frozen=True)
class SrmResult:
    """Chi-square SRM result; ``mismatch`` is ``p_value < threshold``."""

    chi2: float
    p_value: float
    df: int
    expected_counts: dict[str, float]
    observed_counts: dict[str, int]
    mismatch: bool


def sample_ratio_mismatch(
    observed: Mapping[str, int],
    expected_weights: Mapping[str, float],
    threshold: float = 0.001,
) -> SrmResult:
    """Pearson chi-square test of observed counts against normalised expected weights.

    Equals ``scipy.stats.chisquare(observed, total * weights / sum(weights))`` with
    ``df = k - 1``. Variants are the union of both mappings (a missing count is 0, a missing
    weight is 0). Conventions: zero total -> ``chi2=0, p=1``, no mismatch; a variant with weight
    0 but observations -> ``chi2=inf, p=0``, mismatch; weight-0 variants without observations are
    left out of the test; fewer than two weighted variants -> ``chi2=0, p=1``.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    names = list(dict.fromkeys([*expected_weights, *observed]))
    counts = {k: int(observed.get(k, 0)) for k in names}
    weights = {k: float(expected_weights.get(k, 0.0)) for k in names}
    if any(c < 0 for c in counts.values()):
        raise ValueError("observed counts must be >= 0")
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise ValueError("expected weights must be finite and >= 0")
    weight_total = sum(weights.values())
    if weight_total <= 0:
        raise ValueError("expected weights must not all be 0")
    total = sum(counts.values())
    expected = {k: total * weights[k] / weight_total for k in names}
    active = [k for k in names if weights[k] > 0]
    df = max(len(active) - 1, 0)

    def result(chi2: float, p: float) -> SrmResult:
        return SrmResult(chi2, p, df, expected, counts, mismatch=p < threshold)

    if total == 0:
        return result(0.0, 1.0)
    if any(counts[k] > 0 and weights[k] == 0 for k in names):
        return result(math.inf, 0.0)
    if df == 0:
        return result(0.0, 1.0)
    chi2 = math.fsum((counts[k] - expected[k]) ** 2 / expected[k] for k in active)
    return result(chi2, float(stats.chi2.sf(chi2, df)))
