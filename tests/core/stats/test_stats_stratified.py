"""Epoch-stratified estimates, Fieller's relative interval, and the tests that run on them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from core.stats import (
    BinaryStats,
    ContinuousStats,
    TwoArmEstimate,
    combine_strata,
    fieller_interval,
    sequential_from_estimate,
    sequential_test,
    stratified_comparison,
    two_proportion_z_test,
    welch_t_test,
)


def test_one_stratum_is_the_plain_comparison() -> None:
    c = ContinuousStats.from_moments(300, mean=5.0, variance=4.0)
    t = ContinuousStats.from_moments(200, mean=5.4, variance=9.0)
    est = combine_strata([(c, t)])
    plain = TwoArmEstimate.from_arms(c, t)
    assert est == plain
    welch = welch_t_test(c, t)
    assert est.df == pytest.approx(welch.df, rel=1e-12)
    strat = stratified_comparison(est, binary=False)
    assert strat.p_value == pytest.approx(welch.p_value, rel=1e-12)
    assert strat.difference_ci == pytest.approx(welch.difference_ci, rel=1e-12)
    assert strat.relative_lift_ci == pytest.approx(welch.relative_lift_ci, rel=1e-12)
    a, b = sequential_from_estimate(est), sequential_test(c, t)
    assert (a.always_valid_p, a.cs_low, a.relative_cs_high) == pytest.approx(
        (b.always_valid_p, b.cs_low, b.relative_cs_high), rel=1e-12
    )


def test_binary_stratum_gives_the_wald_interval() -> None:
    c, t = BinaryStats(1000, 100), BinaryStats(800, 110)
    strat = stratified_comparison(combine_strata([(c, t)]), binary=True)
    z = two_proportion_z_test(c, t)
    assert strat.difference_ci == pytest.approx(z.difference_ci, rel=1e-12)
    assert strat.relative_lift_ci == pytest.approx(z.relative_lift_ci, rel=1e-12)


def test_two_strata_by_hand() -> None:
    rng = np.random.default_rng(3)
    raw = [
        (rng.normal(1.0, 1.0, 400), rng.normal(1.2, 1.0, 100)),
        (rng.normal(3.0, 2.0, 50), rng.normal(3.2, 2.0, 450)),
    ]
    strata = [(ContinuousStats.from_values(c), ContinuousStats.from_values(t)) for c, t in raw]
    est = combine_strata(strata)
    w = np.array([1 / (np.var(np.r_[c, t], ddof=1) * (1 / len(c) + 1 / len(t))) for c, t in raw])
    w /= w.sum()
    d = np.array([t.mean() - c.mean() for c, t in raw])
    v = np.array([c.var(ddof=1) / len(c) + t.var(ddof=1) / len(t) for c, t in raw])
    assert est.difference == pytest.approx(float(w @ d), rel=1e-10)
    assert est.variance == pytest.approx(float(w**2 @ v), rel=1e-10)
    assert est.control_mean == pytest.approx(float(w @ [c.mean() for c, _ in raw]), rel=1e-10)
    terms = [w[i] ** 2 * x.var(ddof=1) / len(x) for i, pair in enumerate(raw) for x in pair]
    dofs = [len(x) - 1 for pair in raw for x in pair]
    df = sum(terms) ** 2 / sum(a * a / k for a, k in zip(terms, dofs, strict=True))
    assert est.df == pytest.approx(df, rel=1e-10)
    assert (est.strata_used, est.control_n, est.treatment_n) == (2, 450, 550)


def test_simpson_strata_with_no_effect_give_exactly_zero() -> None:
    strata = [
        (BinaryStats(20_000, 2_000), BinaryStats(20_000, 2_000)),
        (BinaryStats(4_000, 480), BinaryStats(36_000, 4_320)),
    ]
    est = combine_strata(strata)
    assert est.difference == pytest.approx(0.0, abs=1e-15)
    assert sequential_from_estimate(est).always_valid_p == 1.0


def test_strata_that_cannot_compare_are_skipped_and_counted() -> None:
    ok = (BinaryStats(100, 10), BinaryStats(100, 12))
    lonely = (BinaryStats(1, 1), BinaryStats(50, 5))
    flat = (BinaryStats(30, 0), BinaryStats(30, 0))
    empty = (BinaryStats(0, 0), BinaryStats(0, 0))
    est = combine_strata([ok, lonely, flat, empty])
    assert (est.strata_used, est.strata_skipped, est.units_skipped) == (1, 2, 111)
    assert est.difference == pytest.approx(0.02)
    assert combine_strata([lonely, flat, empty]) is None
    with pytest.raises(TypeError):
        combine_strata([(BinaryStats(5, 1), ContinuousStats(5, 1.0, 1.0))])


def _fieller_textbook(m_c, v_c, m_t, v_t, crit):
    ratio, g = m_t / m_c, crit * crit * v_c / (m_c * m_c)
    half = crit / abs(m_c) * math.sqrt(v_t + ratio * ratio * v_c - g * v_t)
    return ((ratio - half) / (1 - g) - 1, (ratio + half) / (1 - g) - 1)


@pytest.mark.parametrize(
    ("m_c", "v_c", "m_t", "v_t"),
    [
        (10.0, 0.04, 11.0, 0.09),
        (0.1, 1e-5, 0.08, 2e-5),
        (-4.0, 0.1, -5.0, 0.3),
        (2.0, 0.2, -1.0, 0.1),
    ],
)
def test_fieller_interval_matches_the_textbook_form(m_c, v_c, m_t, v_t) -> None:
    k = stats.norm.ppf(0.975) ** 2
    low, high = fieller_interval(m_c, v_c, m_t, v_t, k)
    assert (low, high) == pytest.approx(_fieller_textbook(m_c, v_c, m_t, v_t, math.sqrt(k)))
    assert low < m_t / m_c - 1 < high
    for bound in (low, high):  # on the boundary of the contrast test
        r = 1 + bound
        assert (m_t - r * m_c) ** 2 == pytest.approx(k * (v_t + r * r * v_c))


def test_fieller_interval_edges() -> None:
    k = 9.0
    # A noisy control mean (0.05^2 < 9 x 0.000475): unbounded; a rate keeps its floor at -100 %.
    assert fieller_interval(0.05, 0.05 * 0.95 / 100, 0.01, 0.0099 / 100, k, True) == (
        -1.0,
        math.inf,
    )
    assert fieller_interval(0.05, 0.05 * 0.95 / 100, 0.01, 0.0099 / 100, k) == (-math.inf, math.inf)
    # Noisy control but a clearly positive treatment: only the ray above lies in L >= -1.
    low, high = fieller_interval(1.0, 0.5, 10.0, 0.01, k, nonnegative=True)
    assert high == math.inf and low > 0.0
    assert (10.0 - (1 + low)) ** 2 == pytest.approx(k * (0.01 + (1 + low) ** 2 * 0.5))
    # No noise: the point.
    assert fieller_interval(2.0, 0.0, 3.0, 0.0, k) == pytest.approx((0.5, 0.5))
    with pytest.raises(ValueError):
        fieller_interval(0.0, 1.0, 1.0, 1.0, k)
    with pytest.raises(ValueError):
        fieller_interval(1.0, -1.0, 1.0, 1.0, k)
