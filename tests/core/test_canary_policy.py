"""The canary policy: decisions, state round-trip, and its guarantees by seeded simulation.

Simulation tolerances are binomial: a guarantee "rate <= r" fails the test only when the 95 %
Clopper-Pearson interval of the observed rate lies entirely above r ("rate >= r": below it).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.deployments import DeploymentConfig
from core.deployments.canary_policy import (
    ABORT,
    HOLD,
    PROMOTE,
    STEP,
    ArmWindow,
    CanaryPolicy,
    PolicyState,
)
from core.deployments.canary_simulation import Scenario, binomial_interval, simulate
from core.errors import ValidationError

HOUR = 3600.0


def config(**canary) -> DeploymentConfig:
    return DeploymentConfig(model_id="m", version="v1", canary_deployment=True, canary=canary)


def window(rng, requests: int, error_rate: float, median_ms: float = 100.0, **kw) -> ArmWindow:
    errors = int(rng.binomial(requests, error_rate))
    latencies = median_ms * np.exp(0.5 * rng.standard_normal(requests - errors))
    return ArmWindow(requests, errors, latencies.tolist(), **kw)


def drive(policy, windows, interval_s=60.0):
    """Feed (stable, canary) windows every ``interval_s``; returns the states and decisions."""
    state, trace = policy.start(0.0), []
    for i, (stable, canary) in enumerate(windows, start=1):
        state, decision = policy.observe(state, stable=stable, canary=canary, now=i * interval_s)
        trace.append((state, decision))
    return trace


# --- decisions -------------------------------------------------------------------------------


def test_a_healthy_canary_steps_on_schedule_and_promotes_at_the_configured_time():
    policy = CanaryPolicy.from_config(config())  # 24 h over 5, 25, 50 %: 8 h each
    rng = np.random.default_rng(1)
    steps = int(24 * HOUR / 60)
    trace = drive(policy, ((window(rng, 95, 0.02), window(rng, 5, 0.02)) for _ in range(steps)))
    moves = [(i + 1, d.action, d.weight) for i, (_, d) in enumerate(trace) if d.action != HOLD]
    assert moves == [(480, STEP, 25.0), (960, STEP, 50.0), (1440, PROMOTE, 100.0)]
    state = trace[-1][0]
    assert state.outcome == PROMOTE and state.ended_at == 24 * HOUR


def test_a_canary_that_starts_at_its_traffic_percentage_steps_to_the_next_weight():
    cfg = DeploymentConfig(model_id="m", version="v1", canary_deployment=True,
                           traffic_percentage=10, canary={"step_seconds": 60})  # fmt: skip
    policy = CanaryPolicy.from_config(cfg)
    rng = np.random.default_rng(2)
    trace = drive(policy, [(window(rng, 200, 0.02), window(rng, 200, 0.02))] * 3)
    assert policy.start(0).weight == 10
    assert [d.weight for _, d in trace] == [25.0, 50.0, 100.0]


def test_promotion_waits_for_min_samples_canary_requests():
    policy = CanaryPolicy.from_config(config(step_seconds=0, min_samples=100))
    rng = np.random.default_rng(3)
    trace = drive(policy, [(window(rng, 300, 0.02), window(rng, 30, 0.02))] * 6)
    assert [d.action for _, d in trace] == [STEP, STEP, HOLD, PROMOTE, PROMOTE, PROMOTE]
    assert "waits for 100 canary requests, has 90" in trace[2][1].reason
    assert trace[3][0].canary.requests == 120


def test_resume_restarts_the_step_clock_and_keeps_the_evidence():
    policy = CanaryPolicy.from_config(config(step_seconds=600))
    rng = np.random.default_rng(12)
    state = drive(policy, [(window(rng, 300, 0.02), window(rng, 30, 0.02))] * 5)[-1][0]
    resumed = policy.resume(state, now=3000.0)
    assert resumed.step_started_at == 3000.0 and resumed.canary == state.canary
    _, decision = policy.observe(resumed, stable=ArmWindow(300, 6, []),
                                 canary=ArmWindow(30, 0, []), now=3500.0)  # fmt: skip
    assert decision.action == HOLD and "500s of 600s at 5%" in decision.reason
    _, decision = policy.observe(resumed, stable=ArmWindow(300, 6, []),
                                 canary=ArmWindow(30, 0, []), now=3600.0)  # fmt: skip
    assert (decision.action, decision.weight) == (STEP, 25.0)


def test_a_broken_canary_is_aborted_with_its_evidence():
    policy = CanaryPolicy.from_config(config())
    rng = np.random.default_rng(4)
    trace = drive(policy, [(window(rng, 1000, 0.02), window(rng, 200, 0.5))] * 5)
    state, decision = next((s, d) for s, d in trace if d.action != HOLD)
    assert decision.action == ABORT and decision.weight == 0 and state.outcome == ABORT
    check = next(c for c in decision.checks if c.metric == "error_rate")
    assert check.outcome == "worse" and check.cs_low > check.margin == 0.01
    assert check.always_valid_p <= 0.05 / 3 and check.min_p == check.always_valid_p
    evidence = json.loads(json.dumps(decision.evidence))
    assert evidence["action"] == ABORT and evidence["checks"][0]["metric"] == "error_rate"
    assert "error_rate" in decision.reason
    # Ended: later windows change nothing (the controller may retry after a crash).
    again, repeat = policy.observe(state, stable=ArmWindow(10, 0, []),
                                   canary=ArmWindow(10, 0, []), now=1e6)  # fmt: skip
    assert again == state and (repeat.action, repeat.weight) == (ABORT, 0.0)


def test_a_slower_canary_is_aborted_on_latency_after_calibration():
    policy = CanaryPolicy.from_config(config(calibration_samples=200))
    rng = np.random.default_rng(5)
    trace = drive(policy, [(window(rng, 300, 0.0), window(rng, 300, 0.0, 200.0))] * 20)
    first = trace[0][0]
    assert first.stable_threshold_ms is not None and first.calibration_ms == ()
    assert first.stable.timed == first.canary.timed == 0  # the calibrating window is not judged
    assert first.canary_threshold_ms == pytest.approx(first.stable_threshold_ms * 1.2 + 5.0)
    decision = next(d for _, d in trace if d.action != HOLD)
    assert decision.action == ABORT
    assert [c.metric for c in decision.checks if c.outcome == "worse"] == ["latency"]


def test_calibration_spans_windows_and_keeps_at_most_calibration_samples():
    policy = CanaryPolicy.from_config(config(calibration_samples=50))
    rng = np.random.default_rng(6)
    trace = drive(policy, [(window(rng, 30, 0.0), window(rng, 3, 0.0))] * 3)
    assert len(trace[0][0].calibration_ms) == 30 and trace[0][0].stable_threshold_ms is None
    assert trace[1][0].calibration_ms == () and trace[1][0].stable_threshold_ms is not None
    assert trace[2][0].stable.timed == 30


def test_accuracy_is_judged_only_with_enough_labels():
    policy = CanaryPolicy.from_config(config(min_feedback=30))
    few = drive(policy, [(ArmWindow(200, 0, [], 20, 19), ArmWindow(200, 0, [], 20, 2))])
    check = next(c for c in few[0][1].checks if c.metric == "accuracy")
    assert check.outcome == "skipped" and few[0][1].action == HOLD
    many = drive(policy, [(ArmWindow(200, 0, [], 200, 190), ArmWindow(200, 0, [], 200, 100))])
    assert many[0][1].action == ABORT
    assert [c.metric for c in many[0][1].checks if c.outcome == "worse"] == ["accuracy"]


def test_a_better_canary_or_one_within_the_margin_never_aborts_however_much_data():
    policy = CanaryPolicy.from_config(config())
    # 10 million requests per arm: the CS is very narrow, but 2.5 % vs 2 % is within 1 point.
    for canary_errors in (0, 150_000, 250_000):
        trace = drive(policy, [(ArmWindow(10**7, 200_000, []),
                                ArmWindow(10**7, canary_errors, []))])  # fmt: skip
        check = trace[0][1].checks[0]
        assert trace[0][1].action == HOLD and check.outcome == "within", check


def test_inconclusive_looks_never_add_up_to_an_abort():
    # 3.5 % vs 2 % at a trickle: worse than the margin, but not provably for a long time.
    policy = CanaryPolicy.from_config(config())
    rng = np.random.default_rng(7)
    trace = drive(policy, [(window(rng, 40, 0.02), window(rng, 10, 0.035)) for _ in range(400)])
    outcomes = [c.outcome for _, d in trace for c in d.checks if c.metric == "error_rate"]
    assert outcomes.count("inconclusive") > 300
    for _, d in trace:
        worse = any(c.outcome == "worse" for c in d.checks)
        assert (d.action == ABORT) == worse


# --- state -----------------------------------------------------------------------------------


@pytest.mark.parametrize("windows", [1, 2, 300])  # calibrating, just calibrated, long after
def test_state_round_trips_through_json_and_continues_identically(windows):
    policy = CanaryPolicy.from_config(config(calibration_samples=150, step_seconds=3600))
    rng = np.random.default_rng(8)
    data = [(window(rng, 100, 0.02, labelled=5, correct=4), window(rng, 20, 0.03))
            for _ in range(windows + 5)]  # fmt: skip
    state = drive(policy, data[:windows])[-1][0]
    restored = PolicyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    for i, (stable, canary) in enumerate(data[windows:], start=windows + 1):
        a = policy.observe(state, stable=stable, canary=canary, now=60.0 * i)
        b = policy.observe(restored, stable=stable, canary=canary, now=60.0 * i)
        assert a == b
        state, restored = a[0], b[0]


def test_state_size_does_not_grow_with_the_rollout():
    policy = CanaryPolicy.from_config(config())
    rng = np.random.default_rng(9)
    trace = drive(policy, [(window(rng, 500, 0.02), window(rng, 50, 0.02)) for _ in range(400)])
    sizes = [len(json.dumps(s.to_dict())) for s, _ in (trace[10], trace[399])]
    assert max(sizes) < 1200 and abs(sizes[0] - sizes[1]) < 40  # digits of counts only


def test_garbage_state_and_bad_windows_are_refused():
    with pytest.raises(ValidationError, match="not a canary policy state"):
        PolicyState.from_dict({"version": 1, "weight": 5})
    with pytest.raises(ValidationError, match="not a canary policy state"):
        PolicyState.from_dict({**PolicyState(0, 5, 0).to_dict(), "version": 99})
    with pytest.raises(ValidationError):
        ArmWindow(requests=3, errors=4, latencies_ms=[])
    with pytest.raises(ValidationError):
        ArmWindow(requests=3, errors=0, latencies_ms=[], labelled=1, correct=2)


@pytest.mark.parametrize(
    ("key", "value"), [("latency_quantile", 0.999), ("calibration_samples", 3), ("alpha", 0.9)]
)
def test_config_validates_the_policy_keys(key, value):
    with pytest.raises(ValidationError, match=f"canary.{key}"):
        config(**{key: value}).validate()


# --- guarantees, by seeded simulation --------------------------------------------------------


def at_most(k: int, n: int, rate: float) -> bool:
    return binomial_interval(k, n)[0] <= rate


def at_least(k: int, n: int, rate: float) -> bool:
    return binomial_interval(k, n)[1] >= rate


@pytest.mark.parametrize("rps", [2, 100])
def test_an_identical_canary_is_rarely_aborted_and_promotes_on_time(rps):
    cfg = config(analysis_interval_s=600)
    r = simulate(cfg, Scenario(rps=rps), rollouts=120, seed=10 + rps)
    assert at_most(r.aborted, r.rollouts, 0.05), r
    assert r.promoted + r.aborted == r.rollouts
    assert r.max_promote_s == r.planned_seconds == 24 * HOUR


def test_a_canary_exactly_at_the_error_margin_is_aborted_at_most_alpha_over_three():
    # The validity of the confidence sequence itself: the least favourable null, not slack.
    cfg = config(analysis_interval_s=1800)
    r = simulate(cfg, Scenario(rps=10, canary_error_rate=0.03), rollouts=300, seed=11)
    assert at_most(r.aborted, r.rollouts, 0.05 / 3), r


def test_looking_every_10_seconds_does_not_inflate_the_error_rate_at_the_margin():
    # 360 looks in a (shortened) rollout: a per-look test would abort most of these canaries.
    cfg = config(analysis_interval_s=10)
    cfg.canary_duration_hours = 1.0
    r = simulate(cfg, Scenario(rps=10, canary_error_rate=0.03), rollouts=100, seed=14)
    assert r.planned_seconds == HOUR and r.promoted + r.aborted == r.rollouts
    assert at_most(r.aborted, r.rollouts, 0.05 / 3), r


def test_a_harmless_difference_does_not_abort_at_high_traffic():
    cfg = config(analysis_interval_s=1800)
    scenario = Scenario(rps=100, canary_error_rate=0.025, canary_median_ms=110)
    r = simulate(cfg, scenario, rollouts=80, seed=12)
    assert at_most(r.aborted, r.rollouts, 0.05), r


@pytest.mark.parametrize(
    ("errors", "median"), [(0.04, 100.0), (0.02, 130.0)], ids=["2x-errors", "30pc-slower"]
)
def test_a_regression_is_aborted_before_half_the_traffic_at_10_rps(errors, median):
    scenario = Scenario(rps=10, canary_error_rate=errors, canary_median_ms=median)
    r = simulate(config(), scenario, rollouts=80, seed=13)
    assert at_least(r.aborted_below_50, r.rollouts, 0.95), r
    assert r.median_abort_s < 16 * HOUR  # reached 50 % after 16 h at the default schedule


# --- purity ----------------------------------------------------------------------------------

PURE_IMPORTS = {"__future__", "math", "collections.abc", "dataclasses", "typing", "numpy",
                "core.deployments.config", "core.deployments.canary_policy", "core.errors",
                "core.stats.sequential", "core.deployments.canary_quality",
                "core.deployments.canary_evidence", "core.quality.names"}  # fmt: skip


@pytest.mark.parametrize(
    "module", ["canary_policy", "canary_simulation", "canary_quality", "canary_evidence"]
)
def test_the_policy_and_the_simulator_import_no_sql_torch_or_clock(module):
    import ast
    from pathlib import Path

    import core.deployments

    path = Path(core.deployments.__file__).with_name(f"{module}.py")
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    imported.discard("scipy.stats")  # the simulator's exact binomial interval
    assert imported <= PURE_IMPORTS, imported - PURE_IMPORTS


# --- quality metrics from feedback -------------------------------------------------------------

BIRDS = ("sparrow", "owl", "bat", "frog")
MIX = (0.85, 0.05, 0.05, 0.05)
GOOD = (0.9, 0.9, 0.9, 0.9)
# Owl recall halved, sparrow recall raised so that overall accuracy stays 0.90 exactly.
OWL_HALVED = (0.9 + 0.05 * 0.45 / 0.85, 0.45, 0.9, 0.9)
QUALITY = {"quality_metrics": ["recall.owl", "macro_f1"]}


def confusion_window(rng, n: int, recall) -> ArmWindow:
    truth = rng.multinomial(n, MIX)
    right = rng.binomial(truth, recall)
    confusion = {}
    for i, label in enumerate(BIRDS):
        confusion[(label, label)] = int(right[i])
        other = BIRDS[(i + 1) % len(BIRDS)]  # every mistake goes to the next class
        confusion[(label, other)] = int(truth[i] - right[i])
    return ArmWindow(n, 0, labelled=n, correct=int(right.sum()), confusion=confusion)


def test_a_canary_that_halves_one_class_recall_is_aborted_on_it_not_on_accuracy():
    rng = np.random.default_rng(3)
    policy = CanaryPolicy.from_config(config(**QUALITY), labels=BIRDS)
    assert policy.settings.metric_alpha == pytest.approx(0.05 / 5)
    windows = [(confusion_window(rng, 2000, GOOD), confusion_window(rng, 2000, OWL_HALVED))
               for _ in range(40)]  # fmt: skip
    state, decision = next((s, d) for s, d in drive(policy, windows) if d.action == ABORT)
    checks = {c.metric: c for c in decision.checks}
    assert checks["recall.owl"].outcome == "worse"
    assert checks["recall.owl"].difference == pytest.approx(0.45, abs=0.05)
    assert checks["accuracy"].outcome != "worse"
    assert "recall.owl" in decision.reason
    owl = state.canary.confusion_map
    assert checks["recall.owl"].n_canary == owl[("owl", "owl")] + owl[("owl", "bat")]


def test_quality_evidence_matches_scikit_learn_and_its_bounds_cover():
    from sklearn.metrics import f1_score, recall_score

    from core.deployments.canary_quality import f1_bounds

    rng = np.random.default_rng(5)
    true = rng.choice(BIRDS, 3000, p=MIX)
    pred = np.where(rng.random(3000) < 0.8, true, rng.choice(BIRDS, 3000))
    confusion: dict[tuple[str, str], int] = {}
    for t, p in zip(true, pred, strict=True):
        confusion[(t, p)] = confusion.get((t, p), 0) + 1
    window = ArmWindow(3000, 0, labelled=3000, correct=int((true == pred).sum()),
                       confusion=confusion)  # fmt: skip
    policy = CanaryPolicy.from_config(config(min_feedback=10, **QUALITY), labels=BIRDS)
    _, decision = policy.observe(policy.start(0.0), stable=window, canary=window, now=60.0)
    checks = {c.metric: c for c in decision.checks}
    labels = list(BIRDS)
    assert checks["recall.owl"].canary == pytest.approx(
        recall_score(true, pred, labels=["owl"], average="macro")
    )
    assert checks["macro_f1"].canary == pytest.approx(
        f1_score(true, pred, labels=labels, average="macro")
    )
    for c in (checks["recall.owl"], checks["macro_f1"]):  # identical arms: 0 inside the CS
        assert c.cs_low <= 0 <= c.cs_high and c.outcome != "worse"
    per_class = f1_score(true, pred, labels=labels, average=None)
    for label, f1 in zip(labels, per_class, strict=True):
        low, high, estimate = f1_bounds(confusion, label, tau=0.05, alpha=0.01)
        assert low <= f1 <= high and estimate == pytest.approx(f1)


def test_quality_counts_round_trip_and_old_states_still_load():
    rng = np.random.default_rng(1)
    policy = CanaryPolicy.from_config(config(**QUALITY), labels=BIRDS)
    windows = [(confusion_window(rng, 50, GOOD), confusion_window(rng, 50, GOOD))] * 3
    state, _ = drive(policy, windows)[-1]
    again = PolicyState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and sum(n for *_, n in state.stable.confusion) == 150
    assert dict(state.quality_min_p).keys() == {"recall.owl", "macro_f1"}
    old = state.to_dict()
    for arm in ("stable", "canary"):
        del old[arm]["confusion"]
    del old["quality_min_p"]
    assert PolicyState.from_dict(old).canary.confusion == ()


def test_unknown_quality_metrics_are_refused():
    for bad in (["recal.owl"], ["macro_f2"], ["recall."], ["recall.owl", "recall.owl"]):
        with pytest.raises(ValidationError, match="canary.quality_metrics"):
            config(quality_metrics=bad)


def feedback_scenario(canary_recall=None, **kw) -> Scenario:
    return Scenario(rps=10, interval_s=600, feedback_rate=0.2, class_mix=MIX, stable_recall=GOOD,
                    canary_recall=canary_recall, class_names=BIRDS, **kw)  # fmt: skip


def test_with_quality_metrics_a_good_canary_is_rarely_aborted_and_owl_halving_is_caught():
    good = simulate(config(**QUALITY), feedback_scenario(), rollouts=40, seed=21)
    assert at_most(good.aborted, good.rollouts, 0.05), good
    assert good.promoted == good.rollouts - good.aborted
    bad = simulate(config(**QUALITY), feedback_scenario(OWL_HALVED), rollouts=20, seed=22)
    assert at_least(bad.aborted, bad.rollouts, 0.9), bad
    assert set(bad.abort_metrics) == {"recall.owl"}
