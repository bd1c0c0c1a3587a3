"""Auto-stop: the pure decision, an A/A simulation checked after every batch, the manager's
check (conclusive data, maximum duration) and the background monitor."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from test_experiments_support import FakeClock, config_dict, register_models

from core.experiments.config import ExperimentConfig
from core.experiments.stopping import auto_stop_decision
from core.stats import BinaryStats, ContinuousStats, two_proportion_z_test

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _cfg(**overrides) -> ExperimentConfig:
    return ExperimentConfig(**config_dict(**overrides)).normalized()


def test_decision_needs_the_minimum_sample_and_a_conclusive_test() -> None:
    cfg = _cfg(minimum_sample_size=500)
    strong = {"control": BinaryStats(400, 200), "treatment": BinaryStats(400, 300)}
    d = auto_stop_decision(cfg, strong, NOW, NOW)
    assert not d.stop and "collecting data: smallest variant has 400 of 500" in d.reason

    strong = {"control": BinaryStats(600, 300), "treatment": BinaryStats(600, 420)}
    d = auto_stop_decision(cfg, strong, NOW, NOW)
    assert d.stop and d.trigger == "conclusive" and d.winner == "treatment"

    worse = {"control": BinaryStats(600, 420), "treatment": BinaryStats(600, 300)}
    assert auto_stop_decision(cfg, worse, NOW, NOW).winner == "control"

    flat = {"control": BinaryStats(600, 300), "treatment": BinaryStats(600, 305)}
    d = auto_stop_decision(cfg, flat, NOW, NOW)
    assert not d.stop and "no always-valid difference" in d.reason

    d = auto_stop_decision(cfg, strong, NOW, NOW, srm_mismatch=True)
    assert not d.stop and "sample ratio mismatch" in d.reason


def test_decision_respects_lower_is_better_primary_metrics() -> None:
    cfg = _cfg(minimum_sample_size=100, primary_metric="inference_time")
    rng = np.random.default_rng(0)
    arms = {
        "control": ContinuousStats.from_values(rng.normal(0.30, 0.05, 400)),
        "treatment": ContinuousStats.from_values(rng.normal(0.20, 0.05, 400)),
    }
    d = auto_stop_decision(cfg, arms, NOW, NOW)
    assert d.stop and d.winner == "treatment"  # faster wins


def test_maximum_duration_stops_whatever_the_data() -> None:
    cfg = _cfg(maximum_duration_days=7)
    empty = {"control": BinaryStats(0, 0), "treatment": BinaryStats(0, 0)}
    assert not auto_stop_decision(cfg, empty, NOW, NOW + timedelta(days=6, hours=23)).stop
    d = auto_stop_decision(cfg, empty, NOW, NOW + timedelta(days=7))
    assert d.stop and d.trigger == "max_duration" and d.winner is None
    assert "maximum duration of 7 days reached" in d.reason


def test_aa_simulation_false_positive_rate_with_a_check_after_every_batch() -> None:
    """Identical arms, the stop rule checked after each of 40 batches: the always-valid rule
    stops (a false positive) in at most 1 - confidence_level of the runs, while naive peeking
    at the fixed-horizon p-value stops far more often."""
    cfg = _cfg(minimum_sample_size=100, confidence_level=0.95)
    rng = np.random.default_rng(20260101)
    runs, batches, batch = 400, 40, 50
    sequential_fp = naive_fp = 0
    for _ in range(runs):
        draws = rng.binomial(batch, 0.3, size=(batches, 2)).cumsum(axis=0)
        stopped = peeked = False
        for k in range(batches):
            n = (k + 1) * batch
            arms = {
                "control": BinaryStats(n, float(draws[k, 0])),
                "treatment": BinaryStats(n, float(draws[k, 1])),
            }
            if not stopped and auto_stop_decision(cfg, arms, NOW, NOW).stop:
                stopped = True
            if not peeked and n >= 100:
                peeked = two_proportion_z_test(arms["control"], arms["treatment"]).p_value < 0.05
            if stopped and peeked:
                break
        sequential_fp += stopped
        naive_fp += peeked
    assert sequential_fp / runs <= 1 - cfg.confidence_level
    assert naive_fp > 2 * sequential_fp  # why the dashboard must not watch fixed p-values


def test_check_stops_a_conclusive_experiment(ctx) -> None:
    from core import ExperimentStatus, get_ab_test_manager
    from core.events import recent_events

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("auto", minimum_sample_size=200))
    manager.start_experiment("auto")
    assert manager.check_experiments() == []
    rng = np.random.default_rng(5)
    rows = []
    for i in range(300):
        rows.append(("auto", f"c{i}", "control", {"accuracy": float(rng.random() < 0.5)}))
        rows.append(("auto", f"t{i}", "treatment", {"accuracy": float(rng.random() < 0.8)}))
    manager.record_results(rows)
    actions = manager.check_experiments()
    assert [a.action for a in actions] == ["auto_stopped"]
    assert actions[0].data == {"trigger": "conclusive", "winner": "treatment"}
    info = manager.get_experiment("auto")
    assert info.status is ExperimentStatus.COMPLETED and info.stopped_by == "auto-stop"
    assert "sequential test conclusive on accuracy: treatment wins" in info.stop_reason
    event = recent_events(kind="experiment.auto_stopped")[0]
    assert event.data["experiment_id"] == "auto" and "conclusive" in event.message
    assert manager.check_experiments() == []  # nothing left to do


def test_check_stops_at_maximum_duration_with_an_injected_clock(ctx) -> None:
    from core import ExperimentStatus
    from core.experiments import ABTestManager

    register_models()
    clock = FakeClock()
    manager = ABTestManager(ctx, clock=clock)
    try:
        manager.create_experiment(config_dict("timeout", maximum_duration_days=3))
        manager.start_experiment("timeout")
        clock.advance(days=2, hours=23)
        assert manager.check_experiments() == []
        clock.advance(hours=1)
        actions = manager.check_experiments()
        assert actions[0].data["trigger"] == "max_duration"
        info = manager.get_experiment("timeout")
        assert info.status is ExperimentStatus.COMPLETED
        assert info.ended_at == clock.now and info.stop_reason.startswith("maximum duration")
        assert manager.analyze_experiment("timeout")["duration_hours"] == pytest.approx(72.0)
    finally:
        manager.close()


def test_background_monitor_stops_experiments_headless(ctx) -> None:
    from core import ExperimentMonitor, ExperimentStatus
    from core.experiments import ABTestManager

    register_models()
    clock = FakeClock()
    manager = ABTestManager(ctx, clock=clock)
    seen = []
    try:
        manager.create_experiment(config_dict("watched", maximum_duration_days=1))
        manager.start_experiment("watched")
        clock.advance(days=2)
        with ExperimentMonitor(interval=0.05, manager=manager, on_actions=seen.extend) as monitor:
            deadline = time.monotonic() + 30
            while not seen and time.monotonic() < deadline:
                time.sleep(0.02)
            assert monitor.running
        assert not monitor.running
        assert [a.experiment_id for a in seen] == ["watched"]
        assert manager.get_experiment("watched").status is ExperimentStatus.COMPLETED
    finally:
        manager.close()


def test_decision_compares_within_allocation_epochs() -> None:
    """Per-epoch arms where each epoch has no effect but the split moved with a drifting base
    rate: pooled, the mSPRT would stop with a winner; within epochs there is nothing."""
    from core.stats import sequential_test

    cfg = _cfg(minimum_sample_size=1000, success_metrics=["accuracy"])
    arms = {
        "control": [BinaryStats(20_000, 2_000), BinaryStats(4_000, 480)],
        "treatment": [BinaryStats(20_000, 2_000), BinaryStats(36_000, 4_320)],
    }
    pooled = sequential_test(
        BinaryStats(24_000, 2_480), BinaryStats(56_000, 6_320), 0.05, None, 2000
    )
    assert pooled.conclusive  # what the old, pooled decision stopped on
    d = auto_stop_decision(cfg, arms, NOW, NOW)
    assert not d.stop and d.winner is None and "no always-valid difference" in d.reason
    assert d.always_valid_p == {"treatment": 1.0}
