"""Welch t-test and two-proportion z-test against scipy/statsmodels, plus edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from core.stats import (
    BinaryStats,
    ComparisonResult,
    ContinuousStats,
    relative_lift_ci,
    two_proportion_z_test,
    welch_t_test,
)


def _assert_no_nan(r: ComparisonResult) -> None:
    values = [
        r.control_mean,
        r.treatment_mean,
        r.difference,
        *r.difference_ci,
        r.p_value,
        r.statistic,
    ]
    values += [] if r.relative_lift is None else [r.relative_lift]
    values += [] if r.relative_lift_ci is None else list(r.relative_lift_ci)
    values += [] if r.df is None else [r.df]
    assert not any(math.isnan(v) for v in values)
    assert 0.0 <= r.p_value <= 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("n_c", "n_t"), [(2, 3), (15, 40), (500, 480), (3000, 25)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_welch_matches_scipy_and_statsmodels(
    seed: int, n_c: int, n_t: int, confidence: float
) -> None:
    rng = np.random.default_rng(seed)
    c = rng.normal(10.0, 2.0, n_c)
    t = rng.normal(10.3, 3.5, n_t)
    r = welch_t_test(ContinuousStats.from_values(c), ContinuousStats.from_values(t), confidence)
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.df == pytest.approx(ref.df, rel=1e-9)
    low, high = CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(
        alpha=1 - confidence, usevar="unequal"
    )
    assert r.difference_ci == pytest.approx((low, high), rel=1e-9)
    assert r.difference == pytest.approx(t.mean() - c.mean(), rel=1e-9)
    assert (r.control_n, r.treatment_n, r.test) == (n_c, n_t, "welch_t")
    assert r.note is None
    _assert_no_nan(r)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n_c", "n_t"), [(40, 60), (1000, 1200), (50_000, 300)])
def test_two_proportion_matches_statsmodels(seed: int, n_c: int, n_t: int) -> None:
    rng = np.random.default_rng(seed)
    s_c = int(rng.binomial(n_c, 0.3))
    s_t = int(rng.binomial(n_t, 0.34))
    r = two_proportion_z_test(BinaryStats(n_c, s_c), BinaryStats(n_t, s_t))
    z, p = proportions_ztest([s_t, s_c], [n_t, n_c])
    assert r.statistic == pytest.approx(z, rel=1e-9)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    ci = confint_proportions_2indep(s_t, n_t, s_c, n_c, method="wald", compare="diff")
    assert r.difference_ci == pytest.approx(ci, rel=1e-9)
    assert r.df is None and r.note is None
    _assert_no_nan(r)


def test_two_proportion_fractional_successes_and_confidence() -> None:
    r = two_proportion_z_test(BinaryStats(200, 41.5), BinaryStats(210, 60.25), confidence=0.9)
    z, p = proportions_ztest([60.25, 41.5], [210, 200])
    ci = confint_proportions_2indep(60.25, 210, 41.5, 200, method="wald", alpha=0.1)
    assert (r.statistic, r.p_value) == pytest.approx((z, p), rel=1e-9)
    assert r.difference_ci == pytest.approx(ci, rel=1e-9)


def _fieller_textbook(m_c, v_c, m_t, v_t, crit):
    """Fieller's interval for the ratio m_t/m_c in its textbook form (g = crit^2 v_c / m_c^2)."""
    ratio = m_t / m_c
    g = crit * crit * v_c / (m_c * m_c)
    half = crit / abs(m_c) * math.sqrt(v_t + ratio * ratio * v_c - g * v_t)
    return ((ratio - half) / (1 - g) - 1, (ratio + half) / (1 - g) - 1)


def test_relative_lift_is_fieller_with_the_absolute_critical_value() -> None:
    c = ContinuousStats.from_moments(400, mean=20.0, variance=16.0)
    t = ContinuousStats.from_moments(300, mean=22.0, variance=25.0)
    r = welch_t_test(c, t)
    crit = stats.t.ppf(0.975, r.df)  # Welch's t, as for the absolute interval
    expected = _fieller_textbook(20.0, 16.0 / 400, 22.0, 25.0 / 300, crit)
    assert r.relative_lift == pytest.approx(0.1, rel=1e-12)
    assert r.relative_lift_ci == pytest.approx(expected, rel=1e-9)
    b = two_proportion_z_test(BinaryStats(1000, 100), BinaryStats(1000, 120))
    z = stats.norm.ppf(0.975)
    expected_b = _fieller_textbook(0.1, 0.09 / 1000, 0.12, 0.12 * 0.88 / 1000, z)
    assert b.relative_lift == pytest.approx(0.2, rel=1e-12)
    assert b.relative_lift_ci == pytest.approx(expected_b, rel=1e-9)


def test_small_samples_use_t_for_the_relative_interval_too() -> None:
    """n = (3, 4): the relative interval uses Welch's t like the absolute one (a z quantile
    would make it far narrower), and the two agree on whether 0 is inside."""
    c = ContinuousStats.from_values([10.0, 12.0, 11.0])
    t = ContinuousStats.from_values([13.0, 12.5, 14.0, 12.0])
    r = welch_t_test(c, t)
    crit = stats.t.ppf(0.975, r.df)
    expected = _fieller_textbook(c.mean, c.variance / 3, t.mean, t.variance / 4, crit)
    assert r.relative_lift_ci == pytest.approx(expected, rel=1e-9)
    _, z_ci = relative_lift_ci(c.mean, c.variance, 3, t.mean, t.variance, 4)
    assert r.relative_lift_ci[1] - r.relative_lift_ci[0] > 1.3 * (z_ci[1] - z_ci[0])
    assert (r.difference_ci[0] > 0) == (r.relative_lift_ci[0] > 0)


@pytest.mark.parametrize("seed", range(6))
def test_relative_and_absolute_intervals_agree_on_zero(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n_c, n_t = rng.integers(5, 400, 2)
        c = BinaryStats(int(n_c), float(rng.integers(1, n_c)))
        t = BinaryStats(int(n_t), float(rng.integers(0, n_t)))
        r = two_proportion_z_test(c, t)
        lo, hi = r.relative_lift_ci
        assert lo >= -1.0  # a rate cannot fall by more than 100 %
        assert (r.difference_ci[0] > 0) == (lo > 0) and (r.difference_ci[1] < 0) == (hi < 0)


def test_relative_lift_ci_coverage_by_simulation() -> None:
    """Fieller's interval covers the true lift ~95% of the time (n=200 per arm, skewed data);
    the 99.9 % binomial interval of 2,000 runs at p=0.95 is about [0.934, 0.965]."""
    rng = np.random.default_rng(11)
    sims, n = 2000, 200
    c = rng.gamma(4.0, 2.5, (sims, n))  # mean 10, skewed
    t = rng.gamma(4.0, 2.75, (sims, n))  # mean 11 -> true lift 0.1
    covered = 0
    for i in range(sims):
        _, (lo, hi) = relative_lift_ci(
            c[i].mean(), c[i].var(ddof=1), n, t[i].mean(), t[i].var(ddof=1), n
        )
        covered += lo <= 0.1 <= hi
    assert 0.934 <= covered / sims <= 0.965


@pytest.mark.parametrize("n_small", [0, 1])
def test_welch_insufficient_data(n_small: int) -> None:
    small = ContinuousStats.from_values([3.0] * n_small)
    big = ContinuousStats.from_values(np.arange(10.0))
    for r in (welch_t_test(small, big), welch_t_test(big, small)):
        assert r.p_value == 1.0 and r.statistic == 0.0 and r.df is None
        assert r.difference_ci == (-math.inf, math.inf)
        assert r.note is not None and "n >= 2" in r.note
        _assert_no_nan(r)
    if n_small == 0:
        assert welch_t_test(small, big).relative_lift is None
        assert "empty" in welch_t_test(big, small).note
    else:
        assert welch_t_test(small, big).relative_lift_ci == (-math.inf, math.inf)


def test_welch_zero_variance_both_groups() -> None:
    same = welch_t_test(
        ContinuousStats.from_values([2.0] * 5), ContinuousStats.from_values([2.0] * 9)
    )
    assert same.p_value == 1.0 and same.statistic == 0.0
    assert same.difference_ci == (0.0, 0.0) and same.note is not None
    diff = welch_t_test(
        ContinuousStats.from_values([2.0] * 5), ContinuousStats.from_values([1.5] * 9)
    )
    assert diff.p_value == 0.0 and diff.statistic == -math.inf
    assert diff.difference_ci == (-0.5, -0.5) and diff.difference == -0.5
    _assert_no_nan(same)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
def test_welch_zero_variance_in_one_group_matches_scipy() -> None:
    c = np.full(20, 5.0)
    t = np.random.default_rng(5).normal(5.5, 1.0, 30)
    r = welch_t_test(ContinuousStats.from_values(c), ContinuousStats.from_values(t))
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert (r.statistic, r.p_value) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-9)
    assert r.df == pytest.approx(29.0, rel=1e-12)


def test_welch_control_mean_zero_has_no_lift() -> None:
    r = welch_t_test(
        ContinuousStats.from_values([-1.0, 1.0, 0.0]), ContinuousStats.from_values([1.0, 2.0, 3.0])
    )
    assert r.relative_lift is None and r.relative_lift_ci is None
    assert r.p_value < 1.0


def test_huge_versus_tiny_variant() -> None:
    big = ContinuousStats.from_moments(10_000_000, mean=1.0, variance=4.0)
    tiny = ContinuousStats.from_moments(3, mean=1.2, variance=4.0)
    r = welch_t_test(big, tiny)
    assert r.df == pytest.approx(2.0, rel=1e-4)  # dominated by the tiny group
    assert 0.5 < r.p_value < 1.0
    _assert_no_nan(r)
    b = two_proportion_z_test(BinaryStats(10_000_000, 500_000), BinaryStats(4, 1))
    z, p = proportions_ztest([1, 500_000], [4, 10_000_000])
    assert (b.statistic, b.p_value) == pytest.approx((z, p), rel=1e-9)


def test_proportions_all_successes_or_failures() -> None:
    for s in (0, 1):
        r = two_proportion_z_test(BinaryStats(50, 50 * s), BinaryStats(80, 80 * s))
        assert r.p_value == 1.0 and r.statistic == 0.0
        assert r.difference_ci == (0.0, 0.0) and r.note is not None
        _assert_no_nan(r)
    assert two_proportion_z_test(BinaryStats(50, 0), BinaryStats(50, 0)).relative_lift is None
    opposite = two_proportion_z_test(BinaryStats(50, 0), BinaryStats(50, 50))
    z, p = proportions_ztest([50, 0], [50, 50])
    assert (opposite.statistic, opposite.p_value) == pytest.approx((z, p), rel=1e-9)
    assert opposite.difference_ci == (1.0, 1.0) and opposite.note is not None


def test_proportions_empty_variant() -> None:
    r = two_proportion_z_test(BinaryStats(0, 0), BinaryStats(100, 10))
    assert r.p_value == 1.0 and r.difference_ci == (-math.inf, math.inf)
    assert r.relative_lift is None and "empty" in (r.note or "")
    _assert_no_nan(r)


def test_invalid_confidence_raises() -> None:
    s = ContinuousStats.from_values([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        welch_t_test(s, s, confidence=1.0)
