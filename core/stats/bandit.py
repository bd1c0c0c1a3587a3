"""Adaptive traffic allocation across experiment arms (multi-armed bandits).

Allocations are returned as FRACTIONS in [0, 1] keyed by arm name and summing to 1 (up to
float rounding). A ``floor`` keeps every arm at or above a minimum share so that estimates for
all arms keep improving and the experiment stays analysable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.stats.summary import BinaryStats, ContinuousStats

__all__ = ["apply_floor", "epsilon_greedy_allocation", "thompson_sampling_allocation"]

Arm = BinaryStats | ContinuousStats

# Variance of the weak prior for continuous arms with n < 2 when no arm has a usable variance.
_FALLBACK_PRIOR_VARIANCE = 1.0


def apply_floor(allocation: Mapping[str, float], floor: float) -> dict[str, float]:
    """Raise every share to at least ``floor``, shrinking the others proportionally.

    Water-filling: arms below the floor are pinned to it and the remaining mass is shared among
    the rest in proportion to their original shares, repeated until no arm is below the floor.
    A floor above ``1/k`` is lowered to ``1/k``, which yields the uniform split.
    """
    names = list(allocation)
    k = len(names)
    if k == 0:
        return {}
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must lie in [0, 1], got {floor}")
    floor = min(floor, 1.0 / k)
    shares = np.clip(np.array([allocation[n] for n in names], dtype=np.float64), 0.0, None)
    shares = shares / shares.sum() if shares.sum() > 0 else np.full(k, 1.0 / k)
    pinned = np.zeros(k, dtype=bool)
    while True:
        free_mass = 1.0 - floor * pinned.sum()
        free_total = shares[~pinned].sum()
        if free_total <= 0:
            out = np.where(pinned, floor, free_mass / max((~pinned).sum(), 1))
        else:
            out = np.where(pinned, floor, shares * free_mass / free_total)
        newly = (~pinned) & (out < floor)
        if not newly.any():
            break
        pinned |= newly
    return {name: float(x) for name, x in zip(names, out, strict=True)}


def _check_arms(arms: Mapping[str, Arm]) -> None:
    kinds = {type(a) for a in arms.values()}
    if len(kinds) != 1 or not kinds <= {BinaryStats, ContinuousStats}:
        raise TypeError("arms must all be BinaryStats or all be ContinuousStats")


def _beta_draws(arms: list[BinaryStats], draws: int, rng: np.random.Generator) -> np.ndarray:
    a = np.array([1.0 + arm.successes for arm in arms])
    b = np.array([1.0 + arm.n - arm.successes for arm in arms])
    return rng.beta(a, b, size=(draws, len(arms)))


def _normal_draws(arms: list[ContinuousStats], draws: int, rng: np.random.Generator) -> np.ndarray:
    total_n = sum(arm.n for arm in arms)
    grand_mean = sum(arm.sum for arm in arms) / total_n if total_n > 0 else 0.0
    dof = sum(arm.n - 1 for arm in arms if arm.n >= 2)
    pooled = sum(arm.variance * (arm.n - 1) for arm in arms if arm.n >= 2) / dof if dof else 0.0
    prior_var = pooled if pooled > 0 else _FALLBACK_PRIOR_VARIANCE
    # n >= 2: Normal(mean, var / n). n < 2: one prior pseudo-observation at the grand mean,
    # updated with the arm's own 0 or 1 observation assuming the pooled per-unit variance.
    loc = np.array(
        [arm.mean if arm.n >= 2 else (grand_mean + arm.sum) / (1 + arm.n) for arm in arms]
    )
    scale = np.sqrt(
        [arm.variance / arm.n if arm.n >= 2 else prior_var / (1 + arm.n) for arm in arms]
    )
    return rng.normal(loc, scale, size=(draws, len(arms)))


def _best_shares(samples: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Fraction of rows in which each column is the best; ties split evenly."""
    best = (
        samples.max(axis=1, keepdims=True)
        if higher_is_better
        else samples.min(axis=1, keepdims=True)
    )
    winners = samples == best
    return (winners / winners.sum(axis=1, keepdims=True)).mean(axis=0)


def thompson_sampling_allocation(
    arms: Mapping[str, Arm],
    higher_is_better: bool = True,
    floor: float = 0.05,
    draws: int = 10000,
    rng: np.random.Generator | None = None,
) -> dict[str, float]:
    """Thompson-sampling split: the Monte-Carlo probability that each arm is best, floored.

    Posteriors: ``Beta(1 + successes, 1 + n - successes)`` for binary arms (fractional
    successes kept as fractions); ``Normal(mean, var / n)`` for continuous arms with ``n >= 2``,
    and for ``n < 2`` a weak prior ``Normal(grand mean, s^2)`` worth one observation (``s^2`` the
    pooled within-arm variance, 1 if no arm has one) updated with the arm's own value if
    ``n == 1``. Lower-is-better metrics pick the minimum. Ties split evenly. Deterministic for a
    given ``rng``; a fresh unseeded one is used if ``None``.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not arms:
        return {}
    _check_arms(arms)
    names = list(arms)
    rng = np.random.default_rng() if rng is None else rng
    binary = [a for a in arms.values() if isinstance(a, BinaryStats)]
    continuous = [a for a in arms.values() if isinstance(a, ContinuousStats)]
    samples = _beta_draws(binary, draws, rng) if binary else _normal_draws(continuous, draws, rng)
    shares = _best_shares(samples, higher_is_better)
    return apply_floor(dict(zip(names, shares.tolist(), strict=True)), floor)


def epsilon_greedy_allocation(
    arms: Mapping[str, Arm],
    epsilon: float,
    higher_is_better: bool = True,
    floor: float = 0.05,
) -> dict[str, float]:
    """Epsilon-greedy split: best arm ``1 - eps + eps/k``, every other arm ``eps/k``, floored.

    "Best" is the highest (or lowest) observed mean among arms with data; tied best arms share
    the greedy mass equally. With no data at all the split is uniform.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
    if not arms:
        return {}
    _check_arms(arms)
    names = list(arms)
    k = len(names)
    has_data = np.array([arms[n].n > 0 for n in names])
    if not has_data.any():
        return apply_floor({n: 1.0 / k for n in names}, floor)
    means = np.array([arms[n].mean for n in names], dtype=np.float64)
    scores = means if higher_is_better else -means
    scores = np.where(has_data, scores, -np.inf)
    best = scores == scores.max()
    shares = epsilon / k + (1.0 - epsilon) * best / best.sum()
    return apply_floor(dict(zip(names, shares.tolist(), strict=True)), floor)
