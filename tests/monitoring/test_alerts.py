"""In-process alerts (pending, firing, resolved) and the error-rate rollback."""

from __future__ import annotations

import asyncio

import pytest

from core.events import recent_events
from core.monitoring.actions import ErrorRateRollback
from core.monitoring.alerts import RULES, AlertEvaluator

PROD = {"deployment": "prod", "model_version": "wd:v1"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_error_rate_alert_waits_for_its_duration_then_fires_and_resolves(sqlite_ctx):
    clock = Clock()
    ev = AlertEvaluator(RULES, clock)
    assert ev.evaluate([("error_rate", PROD, 8.0)]) == []  # pending
    clock.t += 119
    assert ev.evaluate([("error_rate", PROD, 8.0)]) == []
    clock.t += 1
    (fired,) = ev.evaluate([("error_rate", PROD, 8.0)])
    assert fired["alert"] == "ModelErrorRateHigh" and fired["state"] == "firing"
    assert ev.evaluate([("error_rate", PROD, 9.0)]) == []  # still firing: no new event
    (resolved,) = ev.evaluate([("error_rate", PROD, 1.0)])
    assert resolved["state"] == "resolved"
    kinds = [(e.kind, e.severity) for e in reversed(recent_events(kind="alert."))]
    assert kinds == [("alert.firing", "critical"), ("alert.resolved", "info")]
    assert "value 8" in recent_events(kind="alert.firing")[0].message


def test_a_condition_that_stops_while_pending_never_fires(sqlite_ctx):
    clock = Clock()
    ev = AlertEvaluator(RULES, clock)
    ev.evaluate([("latency_p95", PROD, 1500.0)])
    clock.t += 200
    ev.evaluate([("latency_p95", PROD, 500.0)])
    clock.t += 200
    assert ev.evaluate([("latency_p95", PROD, 1500.0)]) == []  # pending again from scratch
    assert recent_events(kind="alert.") == []


def test_ab_significance_fires_immediately_and_labels_are_separate(sqlite_ctx):
    ev = AlertEvaluator(RULES, Clock())
    exp = {"experiment": "e", "comparison": "treatment_vs_control"}
    fired = ev.evaluate([("ab_confidence", exp, 0.99), ("error_rate", PROD, 1.0)])
    assert [f["alert"] for f in fired] == ["ABTestSignificantResult"]
    assert ev.firing() == [{"alert": "ABTestSignificantResult", "labels": exp, "value": 0.99}]


def test_error_rate_rollback_acts_only_on_enough_evidence(served):
    url, manager = served
    from core.deployments import DeploymentConfig
    from core.deployments.tracker import arm_key

    manager.deploy_model(DeploymentConfig(model_id="wd", version="v2", deployment_id="prod"))
    asyncio.run(manager.run_inference([0.0] * 22050))  # the deployment serves v2 here
    tracker = manager.performance_tracker
    rule = ErrorRateRollback(threshold_percent=10.0, min_requests=20)
    for _ in range(10):
        tracker.record("prod", "wd:v2", 0.01, ok=False)
    assert rule.evaluate(manager) == []  # 10 requests: too few to judge
    for _ in range(10):
        tracker.record("prod", "wd:v2", 0.01, ok=True)
    m = tracker.get_current_metrics(arm_key("prod", "wd:v2"))
    assert m.error_rate == pytest.approx(50.0, abs=5)
    assert rule.evaluate(manager) == ["prod"]
    info = manager.get_deployment("prod")
    assert info.version == "v1"
    from core import get_model_registry

    assert get_model_registry().get_model("wd", "v2").status.value == "failed"
    (event,) = recent_events(kind="deployment.rolled_back")
    assert event.data["evidence"]["error_rate_percent"] > 10
    assert event.data["evidence"]["requests"] >= 20
