"""Replicas follow CPU and queue depth, with hysteresis: no flapping on a noisy process."""

from __future__ import annotations

import types

from core.deployments import supervisor as supervisor_module
from core.events import recent_events


def test_scales_up_when_busy_and_down_only_after_a_sustained_idle_period(served, monkeypatch):
    _, manager = served  # "prod" serves wd:v1 with min_replicas 1, max_replicas 2
    dep, model = manager.pool.model_for("prod")
    clock = types.SimpleNamespace(t=1000.0)
    monkeypatch.setattr(supervisor_module, "time", types.SimpleNamespace(monotonic=lambda: clock.t))
    cpu = {"value": 150.0}
    monkeypatch.setattr(manager.performance_tracker, "process_usage", lambda: (cpu["value"], 100.0))
    autoscale = manager.supervisor._autoscale

    def ticks(n: int) -> None:
        for _ in range(n):
            clock.t += 1
            autoscale(dep, model)

    ticks(2)
    assert model.runtime.replicas == 1  # two busy ticks are not yet a trend
    ticks(1)
    assert model.runtime.replicas == 2
    (event,) = recent_events(kind="deployment.scaled")
    assert event.data["from"] == 1 and event.data["to"] == 2

    cpu["value"] = 5.0
    ticks(29)
    assert model.runtime.replicas == 2  # idle, but not for long enough
    cpu["value"] = 90.0  # one noisy tick resets the idle streak
    ticks(1)
    cpu["value"] = 5.0
    ticks(29)
    assert model.runtime.replicas == 2
    ticks(1)
    assert model.runtime.replicas == 1
    assert len(recent_events(kind="deployment.scaled")) == 2

    cpu["value"] = 150.0
    ticks(3)
    assert model.runtime.replicas == 1  # within the cooldown after the last change
    clock.t += 30
    ticks(1)
    assert model.runtime.replicas == 2


def test_process_usage_is_sampled_once_per_second(sqlite_ctx, monkeypatch):
    from core.deployments.tracker import PerformanceTracker

    tracker = PerformanceTracker()
    calls = []
    monkeypatch.setattr(tracker._process, "cpu_percent", lambda _i: calls.append(1) or 42.0)
    first = tracker.process_usage()
    for _ in range(10):
        assert tracker.process_usage() == first
    assert len(calls) == 1 and first[0] == 42.0
