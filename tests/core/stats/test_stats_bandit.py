"""Bandit allocations: posterior probabilities, floors, direction, and a traffic simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from core.stats import (
    BinaryStats,
    ContinuousStats,
    apply_floor,
    epsilon_greedy_allocation,
    thompson_sampling_allocation,
)

DRAWS = 200_000


def _prob_b_beats_a(a: BinaryStats, b: BinaryStats) -> float:
    """Exact P(p_b > p_a) under independent Beta(1 + s, 1 + n - s) posteriors."""
    pa = stats.beta(1 + a.successes, 1 + a.n - a.successes)
    pb = stats.beta(1 + b.successes, 1 + b.n - b.successes)
    value, _ = integrate.quad(lambda x: pb.pdf(x) * pa.cdf(x), 0, 1, limit=200)
    return value


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (BinaryStats(100, 10), BinaryStats(100, 14)),
        (BinaryStats(10, 0.9), BinaryStats(10, 0)),  # fractional successes are not truncated
        (BinaryStats(2000, 101.5), BinaryStats(50, 3.25)),
    ],
)
def test_thompson_binary_matches_exact_beta_probability(a: BinaryStats, b: BinaryStats) -> None:
    alloc = thompson_sampling_allocation(
        {"a": a, "b": b}, floor=0.0, draws=DRAWS, rng=np.random.default_rng(1)
    )
    exact = _prob_b_beats_a(a, b)
    se = math.sqrt(exact * (1 - exact) / DRAWS)
    assert alloc["b"] == pytest.approx(exact, abs=4 * se + 1e-12)
    assert alloc["a"] + alloc["b"] == pytest.approx(1.0, abs=1e-12)


def test_fractional_successes_change_the_answer() -> None:
    alloc = thompson_sampling_allocation(
        {"a": BinaryStats(10, 0.9), "b": BinaryStats(10, 0)},
        floor=0.0,
        rng=np.random.default_rng(0),
    )
    assert alloc["a"] > 0.6  # truncating 0.9 -> 0 would give ~0.5


def test_thompson_continuous_matches_normal_probability() -> None:
    a = ContinuousStats.from_moments(50, mean=10.0, variance=4.0)
    b = ContinuousStats.from_moments(80, mean=10.5, variance=9.0)
    exact = stats.norm.cdf(0.5 / math.sqrt(4.0 / 50 + 9.0 / 80))
    alloc = thompson_sampling_allocation(
        {"a": a, "b": b}, floor=0.0, draws=DRAWS, rng=np.random.default_rng(2)
    )
    assert alloc["b"] == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / DRAWS))
    lower = thompson_sampling_allocation(
        {"a": a, "b": b},
        higher_is_better=False,
        floor=0.0,
        draws=DRAWS,
        rng=np.random.default_rng(2),
    )
    assert lower["a"] == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / DRAWS))


def test_lower_is_better_prefers_the_smallest_mean() -> None:
    rng = np.random.default_rng(3)
    latency = {
        name: ContinuousStats.from_values(rng.normal(mu, 1.0, 300))
        for name, mu in {"fast": 4.0, "medium": 4.6, "slow": 6.0}.items()
    }
    ts = thompson_sampling_allocation(latency, higher_is_better=False, rng=np.random.default_rng(4))
    assert max(ts, key=ts.get) == "fast" and ts["fast"] > 0.8
    assert ts["slow"] == pytest.approx(0.05)
    eg = epsilon_greedy_allocation(latency, epsilon=0.3, higher_is_better=False)
    assert eg == pytest.approx({"fast": 0.8, "medium": 0.1, "slow": 0.1})
    hi = thompson_sampling_allocation(latency, rng=np.random.default_rng(4))
    assert max(hi, key=hi.get) == "slow"


def test_thompson_is_deterministic_given_rng_and_handles_sparse_arms() -> None:
    arms = {
        "a": ContinuousStats.from_values([1.0, 2.0, 3.0]),
        "b": ContinuousStats.from_values([2.5]),
        "c": ContinuousStats(0, 0.0, 0.0),
    }
    first = thompson_sampling_allocation(arms, rng=np.random.default_rng(5))
    again = thompson_sampling_allocation(arms, rng=np.random.default_rng(5))
    assert first == again
    assert all(0.05 - 1e-12 <= v <= 1.0 for v in first.values())
    assert sum(first.values()) == pytest.approx(1.0, abs=1e-12)
    # weak prior: the empty arm is uncertain, not ignored
    no_floor = thompson_sampling_allocation(arms, floor=0.0, rng=np.random.default_rng(5))
    assert no_floor["c"] > 0.1


def test_weak_prior_for_a_single_observation() -> None:
    """n == 1: prior N(grand mean, pooled var) plus the one value -> N((g + x)/2, var/2)."""
    big = ContinuousStats.from_moments(100, mean=0.0, variance=4.0)
    single = ContinuousStats.from_values([3.0])
    grand = 3.0 / 101
    exact = stats.norm.cdf(((grand + 3.0) / 2) / math.sqrt(4.0 / 2 + 4.0 / 100))
    alloc = thompson_sampling_allocation(
        {"big": big, "single": single}, floor=0.0, draws=DRAWS, rng=np.random.default_rng(8)
    )
    assert alloc["single"] == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / DRAWS))


def test_identical_degenerate_arms_split_evenly() -> None:
    flat = ContinuousStats.from_values([1.0] * 5)
    alloc = thompson_sampling_allocation(
        {"x": flat, "y": flat}, floor=0.0, rng=np.random.default_rng(0)
    )
    assert alloc == {"x": 0.5, "y": 0.5}


def test_apply_floor_water_fills() -> None:
    assert apply_floor({"a": 0.98, "b": 0.01, "c": 0.01}, 0.05) == pytest.approx(
        {"a": 0.9, "b": 0.05, "c": 0.05}
    )
    cascade = apply_floor({"a": 0.9, "b": 0.06, "c": 0.04}, 0.1)
    assert cascade == pytest.approx({"a": 0.8, "b": 0.1, "c": 0.1})
    assert apply_floor({"a": 0.7, "b": 0.3}, 0.6) == pytest.approx({"a": 0.5, "b": 0.5})
    untouched = apply_floor({"a": 0.6, "b": 0.4}, 0.05)
    assert untouched == pytest.approx({"a": 0.6, "b": 0.4})
    assert apply_floor({}, 0.05) == {}


def test_epsilon_greedy_shares() -> None:
    arms = {"a": BinaryStats(100, 10), "b": BinaryStats(100, 20), "c": BinaryStats(100, 20)}
    assert epsilon_greedy_allocation(arms, 0.3, floor=0.0) == pytest.approx(
        {"a": 0.1, "b": 0.45, "c": 0.45}
    )
    assert epsilon_greedy_allocation(arms, 0.0, floor=0.05) == pytest.approx(
        {"a": 0.05, "b": 0.475, "c": 0.475}
    )
    unseen = {"a": BinaryStats(0, 0), "b": BinaryStats(10, 1)}
    assert epsilon_greedy_allocation(unseen, 0.2, floor=0.0) == pytest.approx({"a": 0.1, "b": 0.9})
    empty = {"a": BinaryStats(0, 0), "b": BinaryStats(0, 0)}
    assert epsilon_greedy_allocation(empty, 0.2) == {"a": 0.5, "b": 0.5}


def test_invalid_arms() -> None:
    assert thompson_sampling_allocation({}) == {}
    with pytest.raises(TypeError):
        thompson_sampling_allocation({"a": BinaryStats(1, 1), "b": ContinuousStats(1, 1.0, 1.0)})
    with pytest.raises(ValueError):
        epsilon_greedy_allocation({"a": BinaryStats(1, 1)}, epsilon=1.5)


def test_bandit_simulation_routes_traffic_to_the_best_arm() -> None:
    rates = {"a": 0.05, "b": 0.06, "c": 0.10}
    names = list(rates)
    rng = np.random.default_rng(42)
    arms = {name: BinaryStats(0, 0) for name in names}
    alloc = {name: 1 / 3 for name in names}
    history = []
    for _ in range(20):
        users = rng.multinomial(500, [alloc[n] for n in names])
        for name, k in zip(names, users, strict=True):
            successes = float(rng.binomial(k, rates[name]))
            arms[name] = arms[name].merge(BinaryStats(int(k), successes))
        alloc = thompson_sampling_allocation(arms, floor=0.05, rng=rng)
        history.append(alloc)
        assert min(alloc.values()) >= 0.05 - 1e-12
        assert sum(alloc.values()) == pytest.approx(1.0, abs=1e-12)
    print("final allocation:", {k: round(v, 4) for k, v in alloc.items()})
    print("best-arm share by round:", [round(h["c"], 3) for h in history])
    assert alloc["c"] > 0.6
    assert arms["c"].n > arms["a"].n and arms["c"].n > arms["b"].n
