"""Fixed-horizon frequentist comparisons of a treatment against a control.

All effects are ``treatment - control``. Each test returns a :class:`ComparisonResult` whose
fields are always finite or explicitly infinite numbers, never NaN; degenerate inputs produce a
documented conservative answer plus a human-readable ``note``.

Relative lift ``L = m_t / m_c - 1`` gets Fieller's interval (:mod:`core.stats.relative`) with
the absolute interval's critical value: Welch's ``t`` (its degrees of freedom) for the t-test,
``z`` for proportions. It therefore contains 0 exactly when the absolute interval does, covers
at the nominal rate where the delta method does not, and for proportions never goes below
-100 %. It is ``None`` when the control mean is 0 or either group is empty.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from scipy import stats

from core.stats.relative import fieller_interval
from core.stats.stratified import TwoArmEstimate
from core.stats.summary import BinaryStats, ContinuousStats

__all__ = [
    "ComparisonResult",
    "relative_lift_ci",
    "relative_lift_se",
    "stratified_comparison",
    "two_proportion_z_test",
    "welch_t_test",
]

_INF_CI: tuple[float, float] = (-math.inf, math.inf)


@dataclass(frozen=True)
class ComparisonResult:
    """Outcome of a two-sample comparison (effects are treatment minus control).

    ``df`` is the Welch-Satterthwaite degrees of freedom for t-tests and ``None`` for z-tests
    or degenerate cases. ``note`` explains any degenerate-input convention that was applied.
    """

    test: str
    control_mean: float
    treatment_mean: float
    control_n: int
    treatment_n: int
    difference: float
    difference_ci: tuple[float, float]
    relative_lift: float | None
    relative_lift_ci: tuple[float, float] | None
    p_value: float
    statistic: float
    df: float | None
    confidence: float = 0.95
    note: str | None = None


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


@functools.cache
def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def _critical(confidence: float, df: float | None) -> float:
    """Two-sided critical value: z (cached; most calls) or Student's t with ``df``."""
    return _z(confidence) if df is None else float(stats.t.ppf(0.5 + confidence / 2.0, df))


def _two_sided_normal_p(z: float) -> float:
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def relative_lift_ci(
    control_mean: float,
    control_var: float,
    control_n: int,
    treatment_mean: float,
    treatment_var: float,
    treatment_n: int,
    confidence: float = 0.95,
    df: float | None = None,
    nonnegative: bool = False,
) -> tuple[float | None, tuple[float, float] | None]:
    """Relative lift ``m_t/m_c - 1`` and its Fieller interval (see the module docstring).

    ``var`` arguments are per-observation variances; ``df`` selects a t critical value (None:
    z). Returns ``(None, None)`` when the control mean is 0 or a group is empty, and an
    infinite CI when a group has fewer than 2 units.
    """
    _check_confidence(confidence)
    if control_n == 0 or treatment_n == 0 or control_mean == 0.0:
        return None, None
    lift = treatment_mean / control_mean - 1.0
    if control_n < 2 or treatment_n < 2:
        return lift, _INF_CI
    k = _critical(confidence, df) ** 2
    ci = fieller_interval(
        control_mean,
        max(control_var, 0.0) / control_n,
        treatment_mean,
        max(treatment_var, 0.0) / treatment_n,
        k,
        nonnegative,
    )
    return lift, ci


def relative_lift_se(
    control_mean: float,
    control_var: float,
    control_n: int,
    treatment_mean: float,
    treatment_var: float,
    treatment_n: int,
) -> float:
    """Delta-method standard error of ``m_t/m_c - 1`` (``n >= 1``, ``m_c != 0`` required).

    ``sqrt(var_t / n_t + (m_t/m_c)**2 * var_c / n_c) / |m_c|``, the square root of the module
    formula, evaluated with ``hypot`` so extreme magnitudes overflow to inf instead of raising.
    """
    ratio = treatment_mean / control_mean
    spread = math.hypot(
        math.sqrt(max(treatment_var, 0.0) / treatment_n),
        abs(ratio) * math.sqrt(max(control_var, 0.0) / control_n),
    )
    return spread / abs(control_mean)


def welch_t_test(
    control: ContinuousStats, treatment: ContinuousStats, confidence: float = 0.95
) -> ComparisonResult:
    """Welch's unequal-variance two-sample t-test (two-sided) with a t-based CI.

    Assumes independent units and approximately normal group means (CLT). Matches
    ``scipy.stats.ttest_ind(treatment, control, equal_var=False)`` and statsmodels'
    ``CompareMeans(treatment, control).tconfint_diff(usevar="unequal")``.

    Degenerate inputs: a group with ``n < 2`` gives ``p=1``, ``statistic=0``, an infinite CI;
    zero variance in both groups gives ``p=1`` / zero-width CI at 0 when the means agree and
    ``p=0`` / ``statistic=+-inf`` / zero-width CI at the difference when they do not.
    """
    _check_confidence(confidence)
    m_c, m_t = control.mean, treatment.mean
    v_c, v_t = control.variance, treatment.variance
    n_c, n_t = control.n, treatment.n
    diff = m_t - m_c
    df = TwoArmEstimate.from_arms(control, treatment).df if min(n_c, n_t) >= 2 else None
    lift, lift_ci = relative_lift_ci(m_c, v_c, n_c, m_t, v_t, n_t, confidence, df)
    base: dict[str, Any] = dict(
        test="welch_t",
        control_mean=m_c,
        treatment_mean=m_t,
        control_n=n_c,
        treatment_n=n_t,
        difference=diff,
        relative_lift=lift,
        relative_lift_ci=lift_ci,
        confidence=confidence,
    )
    if n_c < 2 or n_t < 2:
        empty = " (empty variant)" if min(n_c, n_t) == 0 else ""
        return ComparisonResult(
            difference_ci=_INF_CI,
            p_value=1.0,
            statistic=0.0,
            df=None,
            note=f"insufficient data: each group needs n >= 2{empty}",
            **base,
        )
    a, b = v_c / n_c, v_t / n_t
    se2 = a + b
    if se2 == 0.0:
        return _zero_variance_result(diff, base)
    se = math.sqrt(se2)
    assert df is not None  # se2 > 0 and both n >= 2
    t = diff / se
    p = float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df)) * se
    return ComparisonResult(
        difference_ci=(diff - half, diff + half), p_value=p, statistic=t, df=df, **base
    )


def two_proportion_z_test(
    control: BinaryStats, treatment: BinaryStats, confidence: float = 0.95
) -> ComparisonResult:
    """Two-sided two-proportion z-test: pooled SE for the p-value, unpooled Wald SE for the CI.

    Assumes independent Bernoulli units and large enough counts for the normal approximation.
    The p-value matches statsmodels ``proportions_ztest([s_t, s_c], [n_t, n_c])`` and the CI
    ``confint_proportions_2indep(s_t, n_t, s_c, n_c, method="wald", compare="diff")``.

    Degenerate inputs: an empty group gives ``p=1``, ``statistic=0`` and an infinite CI; when the
    pooled rate is 0 or 1 (all failures / all successes everywhere) the rates are equal, so
    ``p=1``, ``statistic=0`` and the Wald CI has zero width at 0.
    """
    _check_confidence(confidence)
    p_c, p_t = control.rate, treatment.rate
    n_c, n_t = control.n, treatment.n
    diff = p_t - p_c
    lift, lift_ci = relative_lift_ci(
        p_c, control.variance, n_c, p_t, treatment.variance, n_t, confidence, nonnegative=True
    )
    base: dict[str, Any] = dict(
        test="two_proportion_z",
        control_mean=p_c,
        treatment_mean=p_t,
        control_n=n_c,
        treatment_n=n_t,
        difference=diff,
        relative_lift=lift,
        relative_lift_ci=lift_ci,
        confidence=confidence,
        df=None,
    )
    if n_c == 0 or n_t == 0:
        return ComparisonResult(
            difference_ci=_INF_CI,
            p_value=1.0,
            statistic=0.0,
            note="insufficient data: empty variant",
            **base,
        )
    pooled = (control.successes + treatment.successes) / (n_c + n_t)
    se_pooled2 = pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)
    se_wald = math.sqrt(max(p_c * (1.0 - p_c) / n_c + p_t * (1.0 - p_t) / n_t, 0.0))
    half = _z(confidence) * se_wald
    ci = (diff - half, diff + half)
    if se_pooled2 <= 0.0:
        return ComparisonResult(
            difference_ci=ci,
            p_value=1.0,
            statistic=0.0,
            note="no variation: pooled rate is 0 or 1",
            **base,
        )
    z = diff / math.sqrt(se_pooled2)
    p = _two_sided_normal_p(z)
    note = "zero-width Wald CI: both rates are 0 or 1" if se_wald == 0.0 else None
    return ComparisonResult(difference_ci=ci, p_value=p, statistic=z, note=note, **base)


def _zero_variance_result(diff: float, base: dict[str, Any]) -> ComparisonResult:
    if diff == 0.0:
        return ComparisonResult(
            difference_ci=(0.0, 0.0),
            p_value=1.0,
            statistic=0.0,
            df=None,
            note="zero variance in both groups; identical means",
            **base,
        )
    return ComparisonResult(
        difference_ci=(diff, diff),
        p_value=0.0,
        statistic=math.copysign(math.inf, diff),
        df=None,
        note="zero variance in both groups; means differ deterministically",
        **base,
    )


def stratified_comparison(
    estimate: TwoArmEstimate,
    binary: bool,
    confidence: float = 0.95,
    nonnegative: bool = False,
) -> ComparisonResult:
    """Fixed-horizon test of an epoch-stratified estimate (:mod:`core.stats.stratified`):
    ``z`` for proportions, ``t`` with the Satterthwaite degrees of freedom otherwise; the
    relative lift gets Fieller's interval at the same critical value."""
    _check_confidence(confidence)
    m_c, m_t = estimate.control_mean, estimate.treatment_mean
    diff, se2 = estimate.difference, estimate.variance
    df = None if binary else estimate.df
    base: dict[str, Any] = dict(
        test="stratified_z" if binary else "stratified_welch_t",
        control_mean=m_c,
        treatment_mean=m_t,
        control_n=estimate.control_n,
        treatment_n=estimate.treatment_n,
        difference=diff,
        relative_lift=None if m_c == 0.0 else m_t / m_c - 1.0,
        confidence=confidence,
    )
    if not se2 > 0.0:
        return _zero_variance_result(diff, {**base, "relative_lift_ci": None})
    crit = _critical(confidence, df)
    half = crit * math.sqrt(se2)
    stat = diff / math.sqrt(se2)
    p = _two_sided_normal_p(stat) if df is None else float(2.0 * stats.t.sf(abs(stat), df))
    lift_ci = (
        None
        if m_c == 0.0
        else fieller_interval(
            m_c,
            estimate.control_variance,
            m_t,
            estimate.treatment_variance,
            crit * crit,
            nonnegative,
        )
    )
    return ComparisonResult(
        difference_ci=(diff - half, diff + half),
        relative_lift_ci=lift_ci,
        p_value=min(1.0, p),
        statistic=stat,
        df=df,
        **base,
    )
