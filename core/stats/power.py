"""Power analysis for two-sided two-sample tests under the normal approximation.

Conventions: ``ratio = n_treatment / n_control`` (as statsmodels' ``NormalIndPower``), sample
sizes are per group and returned for the *control* group as unrounded floats (the treatment
group needs ``ratio`` times as many; round up with ``math.ceil`` for planning). Power includes
both rejection tails: ``Phi(d - z) + Phi(-d - z)`` with ``z = z_{1-alpha/2}`` and
``d = |effect| * sqrt(n_c * n_t / (n_c + n_t))`` for a standardised effect.

Binary metrics use Cohen's arcsine effect size ``h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))``
(variance-stabilising, unit per-observation variance), i.e. statsmodels'
``proportion_effectsize`` fed to ``NormalIndPower``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize, stats

__all__ = [
    "RemainingSampleSize",
    "achieved_power",
    "achieved_power_binary",
    "achieved_power_continuous",
    "cohens_h",
    "remaining_sample_size",
    "required_sample_size_binary",
    "required_sample_size_continuous",
]


@dataclass(frozen=True)
class RemainingSampleSize:
    """Units still needed per group (never negative) and overall progress in [0, 1]."""

    control: int
    treatment: int
    total: int
    fraction_complete: float


def _check_ratio(ratio: float) -> None:
    if not (math.isfinite(ratio) and ratio > 0.0):
        raise ValueError(f"ratio must be finite and > 0, got {ratio}")


def _check(alpha: float, power: float | None = None, ratio: float = 1.0) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if power is not None and not alpha < power < 1.0:
        raise ValueError(f"power must lie in (alpha, 1), got {power}")
    _check_ratio(ratio)


def cohens_h(p_control: float, p_treatment: float) -> float:
    """Cohen's h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c)) for rates in [0, 1]."""
    for p in (p_control, p_treatment):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"rates must lie in [0, 1], got {p}")
    return 2.0 * math.asin(math.sqrt(p_treatment)) - 2.0 * math.asin(math.sqrt(p_control))


def achieved_power(
    effect_size: float, n_control: float, n_treatment: float, alpha: float = 0.05
) -> float:
    """Power of a two-sided z-test for a standardised effect (difference / per-unit std).

    Equals ``NormalIndPower().power(effect_size, n_control, alpha, n_treatment / n_control)``.
    An empty group has no information: the power is then ``alpha``.
    """
    _check(alpha)
    if n_control < 0 or n_treatment < 0:
        raise ValueError("sample sizes must be >= 0")
    if n_control == 0 or n_treatment == 0:
        return alpha
    d = abs(effect_size) * math.sqrt(n_control * n_treatment / (n_control + n_treatment))
    z = stats.norm.isf(alpha / 2.0)
    return float(stats.norm.sf(z - d) + stats.norm.cdf(-z - d))


def achieved_power_continuous(
    std: float, mde_abs: float, n_control: float, n_treatment: float, alpha: float = 0.05
) -> float:
    """Power to detect an absolute difference ``mde_abs`` of a metric with per-unit ``std``."""
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return achieved_power(mde_abs / std, n_control, n_treatment, alpha)


def achieved_power_binary(
    baseline_rate: float,
    mde_abs: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
) -> float:
    """Power to detect a rate change from ``baseline_rate`` to ``baseline_rate + mde_abs``."""
    h = cohens_h(baseline_rate, baseline_rate + mde_abs)
    return achieved_power(h, n_control, n_treatment, alpha)


def _solve_n(effect_size: float, alpha: float, power: float, ratio: float) -> float:
    """Control-group n at which the two-tailed power equals ``power`` exactly."""
    _check(alpha, power, ratio)
    if effect_size == 0.0 or not math.isfinite(effect_size):
        raise ValueError(f"standardised effect must be finite and non-zero, got {effect_size}")
    z_sum = float(stats.norm.isf(alpha / 2.0) + stats.norm.ppf(power))
    # One-tail closed form; the second tail only adds power, so the exact root lies below it.
    scaled = z_sum / effect_size
    upper = scaled * scaled * (1.0 + 1.0 / ratio)
    if not math.isfinite(upper):
        return math.inf

    def gap(n: float) -> float:
        return achieved_power(effect_size, n, n * ratio, alpha) - power

    if gap(upper) <= 0.0:
        return upper
    return float(optimize.brentq(gap, 0.0, upper, xtol=1e-14 * upper, rtol=1e-15))


def required_sample_size_continuous(
    std: float,
    mde_abs: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> float:
    """Control-group size for a two-sided test to detect ``mde_abs`` (treatment: ``ratio`` x).

    Normal approximation with known per-unit ``std`` in both groups; matches
    ``NormalIndPower().solve_power(effect_size=mde_abs / std, alpha, power, ratio)``.
    """
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    return _solve_n(mde_abs / std, alpha, power, ratio)


def required_sample_size_binary(
    baseline_rate: float,
    mde_abs: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> float:
    """Control-group size to detect a rate change ``baseline -> baseline + mde_abs``.

    Arcsine (Cohen's h) normal approximation; matches ``NormalIndPower().solve_power`` with
    ``effect_size=proportion_effectsize(baseline + mde_abs, baseline)``.
    """
    if not 0.0 < baseline_rate < 1.0:
        raise ValueError(f"baseline_rate must lie in (0, 1), got {baseline_rate}")
    return _solve_n(cohens_h(baseline_rate, baseline_rate + mde_abs), alpha, power, ratio)


def remaining_sample_size(
    current_n_control: int,
    current_n_treatment: int,
    required_per_group: float,
    ratio: float = 1.0,
) -> RemainingSampleSize:
    """Units still needed: ``ceil(required)`` control and ``ceil(required * ratio)`` treatment."""
    if current_n_control < 0 or current_n_treatment < 0 or required_per_group < 0:
        raise ValueError("sample sizes must be >= 0")
    _check_ratio(ratio)
    # The 1e-9 slack keeps float noise (e.g. 100.00000000001) from costing a whole unit.
    need_c = math.ceil(required_per_group - 1e-9)
    need_t = math.ceil(required_per_group * ratio - 1e-9)
    left_c = max(need_c - current_n_control, 0)
    left_t = max(need_t - current_n_treatment, 0)
    need = need_c + need_t
    done = 1.0 if need == 0 else 1.0 - (left_c + left_t) / need
    return RemainingSampleSize(left_c, left_t, left_c + left_t, done)
