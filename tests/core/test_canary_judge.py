"""The canary judge on known numbers: every p-value is recomputed here from its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from core.deployments.canary_judge import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    ArmSample,
    JudgeSettings,
    judge,
)


def checks(verdict) -> dict:
    return {c.metric: c for c in verdict.checks}


def latencies(rng: np.random.Generator, n: int, mean: float, sd: float) -> list[float]:
    return list(np.clip(rng.normal(mean, sd, n), 0.1, None))


def test_error_rate_z_test_matches_the_formula() -> None:
    rng = np.random.default_rng(1)
    stable = ArmSample(1000, 5, latencies(rng, 995, 10, 1))
    canary = ArmSample(500, 30, latencies(rng, 470, 10, 1))
    verdict = judge(stable, canary)
    c = checks(verdict)["error_rate"]
    pooled = 35 / 1500
    z = (30 / 500 - 5 / 1000) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 500))
    assert z == pytest.approx(6.652, abs=1e-3)
    assert c.p_value == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-6)
    assert (c.stable, c.canary) == (pytest.approx(0.005), pytest.approx(0.06))
    assert c.outcome == "fail" and verdict.outcome == FAIL
    assert c.adjusted_p >= c.p_value  # Holm never lowers a p-value
    assert "error_rate" in verdict.reason
    evidence = verdict.to_dict()
    assert evidence["verdict"] == FAIL and evidence["arms"]["canary"]["errors"] == 30


def test_too_few_samples_is_inconclusive_never_fail() -> None:
    # Every canary request failed, but 10 requests are below the minimum of 100.
    verdict = judge(ArmSample(400, 0, [10.0] * 400), ArmSample(10, 10, []))
    assert verdict.outcome == INCONCLUSIVE
    assert verdict.reason == "too few samples: canary 10 < 100 requests"
    assert verdict.checks == ()
    assert verdict.to_dict()["arms"]["canary"]["error_rate"] == 1.0


def test_identical_arms_pass_and_accuracy_is_skipped_without_feedback() -> None:
    rng = np.random.default_rng(2)
    stable = ArmSample(800, 2, latencies(rng, 798, 12, 2))
    canary = ArmSample(200, 1, latencies(rng, 199, 12, 2))
    verdict = judge(stable, canary)
    assert verdict.outcome == PASS
    by_metric = checks(verdict)
    assert by_metric["accuracy"].outcome == "skipped"
    assert "needs 30 labelled" in by_metric["accuracy"].detail
    assert {c.outcome for m, c in by_metric.items() if m != "accuracy"} == {"pass"}
    assert verdict.reason.endswith("(accuracy skipped)")


def test_slow_canary_fails_latency_p95_and_distribution() -> None:
    rng = np.random.default_rng(3)
    ls = latencies(rng, 500, 10, 1)
    lc = latencies(rng, 200, 20, 2)
    verdict = judge(ArmSample(500, 0, ls), ArmSample(200, 0, lc))
    by_metric = checks(verdict)
    assert verdict.outcome == FAIL
    p95 = by_metric["latency_p95"]
    limit = np.percentile(ls, 95) * 1.2 + 5.0
    exceed = int((np.asarray(lc) > limit).sum())
    assert p95.p_value == pytest.approx(stats.binom.sf(exceed - 1, 200, 0.05))
    assert p95.canary == pytest.approx(np.percentile(lc, 95))
    assert p95.outcome == "fail" and f"{exceed}/200" in p95.detail
    dist = by_metric["latency_distribution"]
    expected = stats.mannwhitneyu(lc, ls, alternative="greater").pvalue
    assert dist.p_value == pytest.approx(expected) and dist.outcome == "fail"
    assert by_metric["error_rate"].outcome == "pass"


def test_heavier_tail_fails_p95_only() -> None:
    rng = np.random.default_rng(4)
    ls = latencies(rng, 1000, 10, 1)
    lc = latencies(rng, 400, 10, 1)
    lc[:80] = [x + 60.0 for x in lc[:80]]  # 20 % of requests 60 ms slower: same median
    verdict = judge(ArmSample(1000, 0, ls), ArmSample(400, 0, lc))
    by_metric = checks(verdict)
    assert by_metric["latency_p95"].outcome == "fail"
    assert by_metric["latency_distribution"].outcome == "pass"  # the median moved < margin
    assert verdict.outcome == FAIL


def test_significant_but_harmless_difference_passes() -> None:
    # 0.5 ms slower on 5000 requests each: highly significant, far below the 20 % + 5 ms margin.
    rng = np.random.default_rng(5)
    ls, lc = latencies(rng, 5000, 10, 1), latencies(rng, 5000, 10.5, 1)
    verdict = judge(ArmSample(5000, 0, ls), ArmSample(5000, 0, lc))
    dist = checks(verdict)["latency_distribution"]
    assert dist.p_value < 1e-10 and dist.outcome == "pass"
    assert verdict.outcome == PASS


def test_material_but_not_significant_waits_for_more_data() -> None:
    settings = JudgeSettings(min_samples=20)
    stable = ArmSample(200, 0, [10.0] * 200)
    canary = ArmSample(20, 0, [10.0] * 18 + [100.0, 100.0])  # p95 is in the slow pair
    verdict = judge(stable, canary, settings)
    p95 = checks(verdict)["latency_p95"]
    assert p95.p_value == pytest.approx(stats.binom.sf(1, 20, 0.05))  # 0.264
    assert p95.outcome == "unsure"
    assert verdict.outcome == INCONCLUSIVE and "waiting for more data" in verdict.reason


def test_accuracy_from_feedback() -> None:
    lat = [10.0] * 300
    settings = JudgeSettings(min_samples=100, min_feedback=50)
    worse = judge(
        ArmSample(300, 0, lat, labelled=100, correct=90),
        ArmSample(300, 0, lat, labelled=100, correct=60),
        settings,
    )
    acc = checks(worse)["accuracy"]
    pooled = 150 / 200
    z = (0.6 - 0.9) / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert acc.p_value == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)), rel=1e-6)
    assert acc.effect == pytest.approx(0.3) and acc.outcome == "fail"
    assert worse.outcome == FAIL
    better = judge(
        ArmSample(300, 0, lat, labelled=100, correct=80),
        ArmSample(300, 0, lat, labelled=100, correct=85),
        settings,
    )
    assert checks(better)["accuracy"].outcome == "pass" and better.outcome == PASS


def test_settings_from_a_canary_config_section() -> None:
    s = JudgeSettings.from_config({"min_samples": 7, "steps": [5, 100], "alpha": 0.01})
    assert (s.min_samples, s.alpha, s.min_feedback) == (7, 0.01, 30)
