"""Normal-mixture mSPRT: closed forms, edge cases and peeking simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from core.stats import (
    DEFAULT_TARGET_SAMPLE_SIZE,
    BinaryStats,
    ContinuousStats,
    SequentialResult,
    always_valid_p_value,
    confidence_sequence_halfwidth,
    default_tau_squared,
    mixture_log_likelihood_ratio,
    optimal_tau_ratio,
    running_p_value,
    sequential_test,
)

ALPHA = 0.05
EXPERIMENTS, LOOKS, BATCH = 400, 40, 50  # peek after every 50 units per arm, up to 2,000


@pytest.mark.parametrize(
    ("theta", "v", "tau2"),
    [(0.0, 1.0, 1.0), (0.3, 0.01, 0.04), (-2.0, 0.5, 3.0), (0.05, 1e-4, 1e-3)],
)
def test_likelihood_ratio_equals_numerical_mixture(theta: float, v: float, tau2: float) -> None:
    """Lambda = integral of N(theta_hat; t, V) / N(theta_hat; 0, V) over t ~ N(0, tau^2)."""

    def integrand(t: float) -> float:
        log_ratio = stats.norm.logpdf(theta, t, math.sqrt(v)) - stats.norm.logpdf(
            theta, 0, math.sqrt(v)
        )
        return math.exp(log_ratio) * stats.norm.pdf(t, 0, math.sqrt(tau2))

    sd = math.sqrt(tau2)
    numeric, _ = integrate.quad(integrand, -12 * sd, 12 * sd, epsabs=0, epsrel=1e-12, limit=200)
    assert math.exp(mixture_log_likelihood_ratio(theta, v, tau2)) == pytest.approx(
        numeric, rel=1e-8
    )


def test_confidence_sequence_is_the_inverted_test() -> None:
    rng = np.random.default_rng(0)
    v = rng.uniform(1e-4, 1.0, 2000)
    tau2 = rng.uniform(1e-4, 1.0, 2000)
    half = confidence_sequence_halfwidth(v, tau2, ALPHA)
    # exactly on the boundary the always-valid p-value equals alpha
    np.testing.assert_allclose(always_valid_p_value(half, v, tau2), ALPHA, rtol=1e-9)
    theta = rng.normal(0, 1, 2000) * half
    p = always_valid_p_value(theta, v, tau2)
    excludes_zero = np.abs(theta) > half
    assert np.array_equal(p < ALPHA, excludes_zero)
    assert 0 < excludes_zero.sum() < 2000


def test_default_tau_squared_is_near_the_width_minimiser() -> None:
    def width(x: float) -> float:  # half-width^2 / V as a function of x = tau^2 / V
        return (1 + x) / x * (2 * math.log(1 / ALPHA) + math.log(1 + x))

    best = optimize.minimize_scalar(width, bounds=(0.01, 100), method="bounded").x
    x_star = optimal_tau_ratio(ALPHA)
    assert x_star == pytest.approx(best, rel=0.05)
    assert width(x_star) == pytest.approx(width(best), rel=1e-3)
    # at the target size, tau^2 / V == x*; elsewhere it scales with N
    assert default_tau_squared(0.02, DEFAULT_TARGET_SAMPLE_SIZE, ALPHA) == pytest.approx(
        0.02 * x_star
    )
    assert default_tau_squared(0.02, 500, ALPHA, target_sample_size=1000) == pytest.approx(
        0.01 * x_star
    )


def test_sequential_test_continuous_fields() -> None:
    c = ContinuousStats.from_moments(800, mean=10.0, variance=4.0)
    t = ContinuousStats.from_moments(700, mean=10.4, variance=9.0)
    r = sequential_test(c, t, alpha=ALPHA, tau_squared=0.05)
    v = 4.0 / 800 + 9.0 / 700
    lam = math.sqrt(v / (v + 0.05)) * math.exp(0.05 * 0.4**2 / (2 * v * (v + 0.05)))
    half = math.sqrt(v * (v + 0.05) / 0.05 * (2 * math.log(20) + math.log((v + 0.05) / v)))
    assert r.variance == pytest.approx(v, rel=1e-12)
    assert r.difference == pytest.approx(0.4, rel=1e-12)
    assert r.likelihood_ratio == pytest.approx(lam, rel=1e-9)
    assert r.always_valid_p == pytest.approx(min(1.0, 1 / lam), rel=1e-9)
    assert (r.cs_low, r.cs_high) == pytest.approx((0.4 - half, 0.4 + half), rel=1e-9)
    assert r.conclusive == (r.always_valid_p <= ALPHA) == (r.cs_low > 0)
    # relative lift sequence: Fieller's set at the sequence's own critical value half^2 / V,
    # i.e. the lifts L whose contrast m_t - (1 + L) m_c lies within that many standard errors
    k = half * half / v
    assert r.relative_lift == pytest.approx(0.04, rel=1e-9)
    for bound in (r.relative_cs_low, r.relative_cs_high):
        contrast = 10.4 - (1 + bound) * 10.0
        assert contrast**2 == pytest.approx(k * (9.0 / 700 + (1 + bound) ** 2 * 4.0 / 800))
    assert r.relative_cs_low < 0.04 < r.relative_cs_high


def test_sequential_test_binary_uses_bernoulli_variance() -> None:
    c, t = BinaryStats(4000, 400), BinaryStats(4000, 520)
    r = sequential_test(c, t)
    v = 0.1 * 0.9 / 4000 + 0.13 * 0.87 / 4000
    tau2 = optimal_tau_ratio(ALPHA) * v * 8000 / DEFAULT_TARGET_SAMPLE_SIZE
    assert r.variance == pytest.approx(v, rel=1e-12) and r.tau_squared == pytest.approx(tau2)
    assert r.always_valid_p == pytest.approx(always_valid_p_value(0.03, v, tau2), rel=1e-9)
    assert r.conclusive and r.cs_low > 0 and r.relative_cs_low > 0


def test_degenerate_inputs() -> None:
    tiny = ContinuousStats.from_values([1.0])
    ok = ContinuousStats.from_values([1.0, 2.0, 3.0])
    flat_a = ContinuousStats.from_values([2.0] * 10)
    flat_b = ContinuousStats.from_values([3.0] * 10)
    cases = [
        sequential_test(tiny, ok),
        sequential_test(ContinuousStats(0, 0.0, 0.0), ok),
        sequential_test(flat_a, flat_b),
        sequential_test(BinaryStats(100, 0), BinaryStats(100, 100)),
    ]
    for r in cases:
        assert r.always_valid_p == 1.0 and not r.conclusive and r.note
        assert (r.cs_low, r.cs_high) == (-math.inf, math.inf)
    assert cases[1].relative_lift is None and cases[2].relative_cs_low == -math.inf


def test_extreme_evidence_does_not_overflow_to_nan() -> None:
    c = ContinuousStats.from_moments(10**6, mean=0.0, variance=1.0)
    t = ContinuousStats.from_moments(10**6, mean=1.0, variance=1.0)
    r = sequential_test(c, t)
    assert r.likelihood_ratio == math.inf and r.always_valid_p == 0.0 and r.conclusive
    assert math.isfinite(r.cs_low) and r.relative_lift is None


def test_input_validation() -> None:
    ok = ContinuousStats.from_values([1.0, 2.0, 3.0])
    with pytest.raises(TypeError):
        sequential_test(ok, BinaryStats(3, 1))
    with pytest.raises(ValueError):
        sequential_test(ok, ok, tau_squared=0.0)
    with pytest.raises(ValueError):
        sequential_test(ok, ok, alpha=1.5)


def test_running_p_value_is_a_running_minimum() -> None:
    seen: float | None = None
    trace = []
    for p in [0.8, 0.3, 0.6, 0.04, 0.5]:
        seen = running_p_value(seen, p)
        trace.append(seen)
    assert trace == [0.8, 0.3, 0.3, 0.04, 0.04]


def _simulate_looks(effect: float, seed: int) -> tuple[np.ndarray, ...]:
    """Cumulative (n, mean, variance) per experiment and look, for both arms (unit variance)."""
    rng = np.random.default_rng(seed)
    out = []
    for shift in (0.0, effect):
        x = rng.normal(shift, 1.0, (EXPERIMENTS, LOOKS, BATCH))
        n = BATCH * np.arange(1, LOOKS + 1, dtype=float)
        s = np.cumsum(x.sum(axis=2), axis=1)
        ss = np.cumsum((x * x).sum(axis=2), axis=1)
        out += [n, s, ss]
    return tuple(out)


def _sequential_grid(effect: float, seed: int) -> tuple[list[list[SequentialResult]], np.ndarray]:
    n, s_c, ss_c, _, s_t, ss_t = _simulate_looks(effect, seed)
    grid = [
        [
            sequential_test(
                ContinuousStats(int(n[k]), float(s_c[e, k]), float(ss_c[e, k])),
                ContinuousStats(int(n[k]), float(s_t[e, k]), float(ss_t[e, k])),
                alpha=ALPHA,
            )
            for k in range(LOOKS)
        ]
        for e in range(EXPERIMENTS)
    ]
    m_c, m_t = s_c / n, s_t / n
    v_c = (ss_c - s_c * m_c) / (n - 1)
    v_t = (ss_t - s_t * m_t) / (n - 1)
    naive_p = stats.ttest_ind_from_stats(m_t, np.sqrt(v_t), n, m_c, np.sqrt(v_c), n, False).pvalue
    return grid, naive_p


def test_aa_simulation_msprt_controls_peeking_but_naive_t_test_does_not() -> None:
    grid, naive_p = _sequential_grid(effect=0.0, seed=2024)
    msprt_ever = np.mean([any(r.conclusive for r in row) for row in grid])
    naive_ever = np.mean((naive_p <= ALPHA).any(axis=1))
    naive_final = np.mean(naive_p[:, -1] <= ALPHA)
    print(f"A/A: mSPRT ever-significant {msprt_ever:.4f}, naive peeking {naive_ever:.4f}")
    assert msprt_ever <= ALPHA
    assert naive_ever > 2 * ALPHA  # the peeking problem is real in this very simulation
    assert naive_final < 0.09  # ...while a single fixed-horizon look is roughly calibrated


def test_aa_simulation_binary_metric() -> None:
    rng = np.random.default_rng(7)
    batch = rng.binomial(BATCH, 0.1, (2, EXPERIMENTS, LOOKS)).astype(float)
    succ = np.cumsum(batch, axis=2)
    n = BATCH * np.arange(1, LOOKS + 1)
    ever = [
        any(
            sequential_test(
                BinaryStats(int(n[k]), succ[0, e, k]), BinaryStats(int(n[k]), succ[1, e, k])
            ).conclusive
            for k in range(LOOKS)
        )
        for e in range(EXPERIMENTS)
    ]
    print(f"A/A binary: mSPRT ever-significant {np.mean(ever):.4f}")
    assert np.mean(ever) <= ALPHA


def test_ab_simulation_becomes_conclusive_and_sequences_cover_the_truth() -> None:
    effect = 0.2
    grid, _ = _sequential_grid(effect=effect, seed=99)
    conclusive = np.array([[r.conclusive for r in row] for row in grid])
    ever_conclusive = conclusive.any(axis=1).mean()
    first = [int(np.argmax(row)) for row in conclusive if row.any()]
    # time-uniform coverage: the true effect is never excluded in >= 95% of experiments
    miss = np.mean([any(not r.cs_low <= effect <= r.cs_high for r in row) for row in grid])
    print(
        f"A/B d=0.2: conclusive {ever_conclusive:.3f}, median stop at "
        f"{BATCH * (np.median(first) + 1):.0f}/arm, CS ever misses truth {miss:.4f}"
    )
    assert ever_conclusive >= 0.9
    assert miss <= ALPHA
    assert all(row[-1].difference > 0 for row in grid if row[-1].conclusive)
