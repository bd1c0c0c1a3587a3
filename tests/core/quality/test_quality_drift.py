"""The drift test: its false-alarm rate per day by a seeded simulation, its power, and the
chi-square statistic against scipy's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, chi2_contingency

from core.quality.drift import (
    FALSE_ALARMS_PER_DAY,
    drift_verdict,
    homogeneity_test,
    pooled_groups,
)
from core.quality.drift_simulation import simulate_days


def test_homogeneity_matches_scipy_when_no_category_is_sparse() -> None:
    ref, win = [120, 300, 580], [50, 90, 160]
    ours = homogeneity_test(ref, win)
    stat, p, dof, _ = chi2_contingency([ref, win], correction=False)
    assert (ours.statistic, ours.p_value, ours.dof) == pytest.approx((stat, p, dof))


def test_sparse_categories_are_pooled_from_the_reference_alone() -> None:
    reference = [1, 2, 500, 400, 3]
    groups = pooled_groups(reference, window_n=1000)
    assert sorted(map(sorted, groups)) == [[0, 1, 4], [2], [3]]
    # A smaller window needs larger groups: the sparse pool joins the next-smallest category.
    assert sorted(map(sorted, pooled_groups(reference, window_n=100))) == [[0, 1, 3, 4], [2]]
    assert pooled_groups([0, 0, 0], window_n=100) == []


def test_false_alarm_rate_per_day_is_at_most_the_stated_rate() -> None:
    """2,000 simulated days without drift (seeded). One-sided binomial test of "the rate is
    at most 1 % a day": the observed alarms must not be significant at 0.1 %."""
    result = simulate_days(2000, seed=1)
    assert binomtest(result.alarm_days, result.days, FALSE_ALARMS_PER_DAY, "greater").pvalue > 1e-3


@pytest.mark.parametrize("window_n", [60, 200])
def test_false_alarms_stay_bounded_for_small_hourly_windows(window_n: int) -> None:
    result = simulate_days(1000, window_n=window_n, seed=window_n)
    assert binomtest(result.alarm_days, result.days, FALSE_ALARMS_PER_DAY, "greater").pvalue > 1e-3


def test_a_shifted_class_mix_alarms_within_the_day() -> None:
    result = simulate_days(200, class_shift=0.15, seed=2)
    assert result.rate_per_day > 0.95
    assert result.alarm_looks / result.looks > 0.5


def test_verdict_needs_a_reference_and_enough_predictions() -> None:
    assert drift_verdict([], [], [], []).reason == "no reference yet"
    few = drift_verdict([100, 100], [5, 5], [100] * 10, [1] * 10)
    assert not few.alarm and "fewer than" in few.reason
    rng = np.random.default_rng(0)
    ref_conf = rng.multinomial(2000, [0.1] * 10)
    late = drift_verdict([500, 500], [300, 20], ref_conf, rng.multinomial(320, [0.1] * 10))
    assert late.alarm and late.reason == "class mix drifted" and late.p_value < late.alpha
