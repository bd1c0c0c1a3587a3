"""Power and sample size against statsmodels' NormalIndPower."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from core.stats import (
    achieved_power,
    achieved_power_binary,
    achieved_power_continuous,
    cohens_h,
    remaining_sample_size,
    required_sample_size_binary,
    required_sample_size_continuous,
)

CASES = [
    # alpha, power, ratio
    (0.05, 0.8, 1.0),
    (0.01, 0.9, 1.0),
    (0.1, 0.5, 2.0),
    (0.05, 0.95, 0.25),
]


@pytest.mark.parametrize(("alpha", "power", "ratio"), CASES)
@pytest.mark.parametrize(("std", "mde"), [(1.0, 0.1), (12.5, 3.0), (0.4, -0.05)])
def test_continuous_sample_size_matches_statsmodels(
    alpha: float, power: float, ratio: float, std: float, mde: float
) -> None:
    n = required_sample_size_continuous(std, mde, alpha=alpha, power=power, ratio=ratio)
    ref = NormalIndPower().solve_power(effect_size=mde / std, alpha=alpha, power=power, ratio=ratio)
    assert n == pytest.approx(ref, rel=1e-6)
    # and the answer really delivers the requested power (to solver precision)
    assert achieved_power_continuous(std, mde, n, n * ratio, alpha) == pytest.approx(
        power, abs=1e-12
    )


@pytest.mark.parametrize(("alpha", "power", "ratio"), CASES)
@pytest.mark.parametrize(("baseline", "mde"), [(0.1, 0.01), (0.5, -0.05), (0.02, 0.005)])
def test_binary_sample_size_matches_statsmodels(
    alpha: float, power: float, ratio: float, baseline: float, mde: float
) -> None:
    n = required_sample_size_binary(baseline, mde, alpha=alpha, power=power, ratio=ratio)
    h = proportion_effectsize(baseline + mde, baseline)
    assert cohens_h(baseline, baseline + mde) == pytest.approx(h, rel=1e-12)
    ref = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    assert n == pytest.approx(ref, rel=1e-6)


def test_textbook_value() -> None:
    # 2 * (1.959964 + 0.841621)^2 / 0.2^2 = 392.4 per group for d = 0.2 (one tail dominates)
    n = required_sample_size_continuous(1.0, 0.2)
    assert n == pytest.approx(2 * (1.959963985 + 0.841621234) ** 2 / 0.04, rel=1e-5)
    assert math.ceil(n) == 393


@pytest.mark.parametrize(
    ("es", "n_c", "n_t", "alpha"),
    [
        (0.1, 500, 500, 0.05),
        (0.3, 80, 200, 0.01),
        (-0.05, 10_000, 2_500, 0.1),
        (0.0, 100, 100, 0.05),
    ],
)
def test_achieved_power_matches_statsmodels(es: float, n_c: int, n_t: int, alpha: float) -> None:
    ref = NormalIndPower().power(es, n_c, alpha, ratio=n_t / n_c)
    assert achieved_power(es, n_c, n_t, alpha) == pytest.approx(ref, rel=1e-9)


def test_achieved_power_binary_and_empty_group() -> None:
    h = proportion_effectsize(0.12, 0.1)
    ref = NormalIndPower().power(h, 3000, 0.05, ratio=1.0)
    assert achieved_power_binary(0.1, 0.02, 3000, 3000) == pytest.approx(ref, rel=1e-9)
    assert achieved_power(0.5, 0, 100, 0.05) == 0.05


def test_power_grows_with_sample_size() -> None:
    powers = [achieved_power_continuous(2.0, 0.3, n, n) for n in (50, 200, 800, 3200)]
    assert powers == sorted(powers) and powers[-1] > 0.99


def test_remaining_sample_size() -> None:
    r = remaining_sample_size(150, 90, 392.4)
    assert (r.control, r.treatment, r.total) == (243, 303, 546)
    assert r.fraction_complete == pytest.approx(1 - 546 / 786)
    done = remaining_sample_size(1000, 1200, 392.4)
    assert (done.total, done.fraction_complete) == (0, 1.0)
    uneven = remaining_sample_size(0, 0, 100.0, ratio=2.0)
    assert (uneven.control, uneven.treatment) == (100, 200)
    assert remaining_sample_size(0, 0, 0.0).fraction_complete == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: required_sample_size_continuous(1.0, 0.0),
        lambda: required_sample_size_continuous(0.0, 0.1),
        lambda: required_sample_size_continuous(1.0, 0.1, power=0.01),
        lambda: required_sample_size_continuous(1.0, 0.1, ratio=0.0),
        lambda: required_sample_size_binary(0.95, 0.1),
        lambda: required_sample_size_binary(0.0, 0.1),
        lambda: remaining_sample_size(-1, 0, 10.0),
    ],
)
def test_invalid_inputs_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
