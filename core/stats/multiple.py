"""Multiple-comparison control across several metrics or variants (Holm-Bonferroni).

Holm's step-down procedure controls the family-wise error rate at ``alpha`` under arbitrary
dependence between the tests; it is uniformly more powerful than plain Bonferroni.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["holm_adjust", "holm_reject"]


def _validated(p_values: Sequence[float]) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0):
        raise ValueError("p-values must be finite numbers in [0, 1]")
    return p


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order.

    ``adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))`` over ascending p-values; equals
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``. Empty input -> ``[]``.
    """
    p = _validated(p_values)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="mergesort")
    stepped = np.maximum.accumulate(p[order] * np.arange(m, 0, -1, dtype=np.float64))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum(stepped, 1.0)
    return [float(x) for x in adjusted]


def holm_reject(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Which hypotheses Holm's procedure rejects at family-wise level ``alpha``.

    Step-down: walk the ascending p-values and reject while ``p_(j) <= alpha / (m - j + 1)``;
    stop at the first failure. Matches ``multipletests(p, alpha, method="holm")[0]``.
    """
    if not 0.0 < alpha < 1.0 or math.isnan(alpha):
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    p = _validated(p_values)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="mergesort")
    passes = p[order] <= alpha / np.arange(m, 0, -1, dtype=np.float64)
    failures = np.flatnonzero(~passes)
    n_reject = int(failures[0]) if failures.size else m
    reject = np.zeros(m, dtype=bool)
    reject[order[:n_reject]] = True
    return [bool(x) for x in reject]
