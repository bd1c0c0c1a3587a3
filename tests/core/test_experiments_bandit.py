"""Bandit allocation: recomputation from posteriors with floors, recorded in the history; a
simulation in which most traffic ends up on the best arm."""

from __future__ import annotations

import numpy as np
import pytest
from test_experiments_support import MODEL, FakeClock, config_dict, register_models

from core.experiments.bandit import bandit_allocation
from core.experiments.config import ExperimentConfig
from core.stats import BinaryStats, ContinuousStats

THREE = {
    "a": f"{MODEL}:v2.0.0",
    "b": f"{MODEL}:v2.1.0",
    "c": f"{MODEL}:v2.2.0",
}


def _bandit_cfg(experiment_id: str = "bandit", **overrides) -> dict:
    settings = {
        "model_variants": THREE,
        "traffic_allocation": {"a": 34.0, "b": 33.0, "c": 33.0},
        "success_metrics": ["accuracy", "inference_time"],
        "bandit_config": {
            "algorithm": "thompson_sampling",
            "reward_metric": "accuracy",
            "update_frequency": 3600,
        },
        "allocation_floor": 5.0,
        "minimum_sample_size": 100_000,  # keep the auto-stop out of the bandit's way
    }
    return config_dict(experiment_id, **{**settings, **overrides})


def test_fractional_rewards_count_as_fractions() -> None:
    cfg = ExperimentConfig(**_bandit_cfg()).normalized()
    # Every reward is 0.6 for "a" and 0.4 for "b"/"c": truncation would make them all 0.
    arms = {
        "a": BinaryStats(500, 300.0),
        "b": BinaryStats(500, 200.0),
        "c": BinaryStats(500, 200.0),
    }
    allocation, detail = bandit_allocation(cfg, arms, version=2)
    assert allocation["a"] == pytest.approx(90.0, abs=0.01)  # 1 - 2 * floor
    assert allocation["b"] >= 5.0 and allocation["c"] >= 5.0
    assert sum(allocation.values()) == pytest.approx(100.0, abs=1e-9)
    assert detail["floor_percent"] == 5.0 and detail["algorithm"] == "thompson_sampling"
    # Reproducible: the same version draws the same posterior samples.
    assert bandit_allocation(cfg, arms, version=2)[0] == allocation


def test_lower_is_better_rewards_pick_the_minimum() -> None:
    cfg = ExperimentConfig(**_bandit_cfg(primary_metric="inference_time")).normalized()
    cfg.reward_metric = "inference_time"
    rng = np.random.default_rng(1)
    arms = {
        v: ContinuousStats.from_values(rng.normal(mu, 0.02, 300))
        for v, mu in (("a", 0.30), ("b", 0.20), ("c", 0.25))
    }
    allocation, _ = bandit_allocation(cfg, arms, version=2)
    assert max(allocation, key=allocation.get) == "b"


def test_epsilon_greedy_gives_the_best_arm_the_greedy_share() -> None:
    cfg = ExperimentConfig(
        **_bandit_cfg(bandit_config={"algorithm": "epsilon_greedy", "exploration_rate": 0.3})
    ).normalized()
    arms = {"a": BinaryStats(100, 50.0), "b": BinaryStats(100, 70.0), "c": BinaryStats(100, 60.0)}
    allocation, _ = bandit_allocation(cfg, arms, version=2)
    assert allocation == {"a": 10.0, "b": 80.0, "c": 10.0}


def test_manager_recomputes_on_schedule_records_history_and_routes_by_it(ctx) -> None:
    from core.events import recent_events
    from core.experiments import ABTestManager

    register_models()
    clock = FakeClock()
    manager = ABTestManager(ctx, clock=clock)
    try:
        manager.create_experiment(_bandit_cfg())
        manager.start_experiment("bandit")
        rng = np.random.default_rng(2)
        rows = [
            ("bandit", f"{v}{i}", v, {"accuracy": float(rng.random() < p)})
            for v, p in (("a", 0.2), ("b", 0.3), ("c", 0.6))
            for i in range(150)
        ]
        manager.record_results(rows)
        clock.advance(minutes=59)
        assert manager.check_experiments() == []  # not due before update_frequency
        clock.advance(minutes=1)
        actions = manager.check_experiments()
        assert [a.action for a in actions] == ["bandit_update"]

        history = manager.allocation_history("bandit")
        assert [(h.version, h.source) for h in history] == [(1, "initial"), (2, "bandit")]
        update = history[1]
        assert update.allocation["c"] > 80 and min(update.allocation.values()) >= 5.0
        assert (
            update.detail["floor_percent"] == 5.0 and update.detail["reward_metric"] == "accuracy"
        )
        assert update.at == clock.now and update.actor == "bandit"
        assert recent_events(kind="experiment.bandit_update")[0].data["version"] == 2

        counts = {"a": 0, "b": 0, "c": 0}
        for i in range(5000):
            counts[manager.assign("bandit", f"new{i}")[0]] += 1
        assert counts["c"] / 5000 > 0.75 and min(counts.values()) > 0
        assert manager.check_experiments() == []  # the next update waits another hour
    finally:
        manager.close()


def test_fixed_experiments_have_no_bandit(ctx) -> None:
    from core import ConflictError, get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("fixed"))
    with pytest.raises(ConflictError, match="fixed allocation"):
        manager.update_bandit_allocation("fixed")


def test_simulation_sends_most_traffic_to_the_best_arm(ctx) -> None:
    """Route real units through the bucket map, record Bernoulli rewards, update after every
    round: the best arm (70%) ends up with most of the traffic."""
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(_bandit_cfg("sim"))
    manager.start_experiment("sim")
    truth = {"a": 0.3, "b": 0.5, "c": 0.7}
    rng = np.random.default_rng(9)
    served = {v: 0 for v in truth}
    rounds, per_round = 15, 200
    for r in range(rounds):
        rows = []
        for i in range(per_round):
            request = f"r{r}-{i}"
            variant = manager.assign("sim", request)[0]
            served[variant] += 1
            rows.append(
                ("sim", request, variant, {"accuracy": float(rng.random() < truth[variant])})
            )
        manager.record_results(rows)
        manager.update_bandit_allocation("sim", force=True)
    final = manager.get_experiment("sim").allocation
    assert final["c"] > 70 and min(final.values()) >= 5.0
    assert served["c"] > 0.5 * rounds * per_round
    assert len(manager.allocation_history("sim")) == rounds + 1
