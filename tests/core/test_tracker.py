"""The performance tracker: rolling-window numbers against numpy with an injected clock,
per-second history, accuracy from feedback, and snapshots that another manager (or another
process) reads back from the database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core import ModelMetadata, ModelStatus, get_model_registry
from core.deployments import (
    DeploymentConfig,
    DeploymentManager,
    PerformanceMetrics,
    PerformanceTracker,
    get_deployment_manager,
)
from core.deployments import snapshots as snapshots_module
from inference.architectures import build_model
from inference.synthetic import generate_call

DEP = "wd_prod"
V1 = "wildlife_detector:v1.0.0"
V2 = "wildlife_detector:v2.0.0"
BASE = 1_000_000.0  # far from the real time: the tracker must use only its own clock
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, t: float = BASE) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def steady_traffic(
    tracker: PerformanceTracker, clock: Clock, seconds: int, per_second: int, seed: int = 0
) -> dict[int, list[tuple[float, bool]]]:
    """``per_second`` requests in each second; every 20th fails. Returns what was recorded."""
    rng = np.random.default_rng(seed)
    start = int(clock.t)
    recorded: dict[int, list[tuple[float, bool]]] = {}
    for s in range(seconds):
        for i in range(per_second):
            clock.t = start + s + i / per_second
            latency = float(rng.lognormal(mean=-4.0, sigma=0.5))
            ok = (s * per_second + i) % 20 != 0
            tracker.record(DEP, V1, latency, ok)
            recorded.setdefault(start + s, []).append((latency, ok))
    clock.t = start + seconds
    return recorded


def test_rolling_window_matches_numpy() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    recorded = steady_traffic(tracker, clock, seconds=120, per_second=10)
    window = [x for second, xs in recorded.items() if second >= clock.t - 60 for x in xs]
    latencies = np.array([lat for lat, _ in window])
    errors = sum(1 for _, ok in window if not ok)
    assert len(window) == 600

    m = tracker.get_current_metrics(DEP)
    assert m.deployment_id == DEP and m.model_version == V1
    assert m.requests_in_window == 600 and m.errors_in_window == errors
    assert m.requests_per_second == pytest.approx(10.0)
    assert m.error_rate == pytest.approx(errors / 600 * 100)
    assert m.average_latency_ms == pytest.approx(latencies.mean() * 1000)
    for q, value in ((50, m.p50_latency_ms), (95, m.p95_latency_ms), (99, m.p99_latency_ms)):
        assert value == pytest.approx(np.percentile(latencies, q) * 1000, rel=1e-9)
    assert m.p50_latency_ms < m.p95_latency_ms < m.p99_latency_ms
    assert m.memory_usage_mb > 0 and m.cpu_usage_percent >= 0

    # A shorter window is computed from fewer buckets, not scaled.
    ten = tracker.get_current_metrics(DEP, window_seconds=10)
    assert ten.requests_in_window == 100 and ten.requests_per_second == pytest.approx(10.0)


def test_requests_per_second_while_the_first_window_fills() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    steady_traffic(tracker, clock, seconds=4, per_second=10)
    m = tracker.get_current_metrics(DEP)
    assert m.requests_in_window == 40
    assert m.requests_per_second == pytest.approx(10.0)  # 40 over 4 s, not over 60 s or 1 s


def test_numbers_are_per_interval_not_cumulative() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    for _ in range(50):
        tracker.record(DEP, V1, 0.500, ok=False)  # a bad minute
    clock.t += 61
    idle = tracker.get_current_metrics(DEP)
    assert idle is not None and idle.requests_in_window == 0
    assert (idle.requests_per_second, idle.error_rate, idle.p95_latency_ms) == (0.0, 0.0, 0.0)

    for _ in range(30):
        tracker.record(DEP, V1, 0.010, ok=True)
    m = tracker.get_current_metrics(DEP)
    assert m.requests_in_window == 30 and m.errors_in_window == 0 and m.error_rate == 0.0
    assert m.p99_latency_ms == pytest.approx(10.0)


def test_series_per_deployment_version_and_arm() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    tracker.record(DEP, V1, 0.01, ok=True)
    tracker.record(DEP, V1, 0.01, ok=False)
    clock.t += 1
    tracker.record(DEP, V2, 0.02, ok=True)
    assert tracker.get_current_metrics(DEP).model_version == V2  # the most recent version
    assert tracker.get_current_metrics(DEP).requests_in_window == 3
    v1 = tracker.get_current_metrics(V1)
    assert v1.requests_in_window == 2 and v1.error_rate == 50.0
    assert tracker.get_current_metrics(f"{DEP}@{V2}").requests_in_window == 1
    assert tracker.get_current_metrics("unknown") is None
    assert tracker.history("unknown") == []
    tracker.forget(DEP)
    assert tracker.get_current_metrics(DEP) is None
    assert tracker.get_current_metrics(V1) is not None


def test_history_has_one_sample_per_second() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    recorded = steady_traffic(tracker, clock, seconds=5, per_second=20)
    clock.t += 3  # three idle seconds: no samples for them
    steady_traffic(tracker, clock, seconds=2, per_second=4)
    history = tracker.history(DEP)
    assert [s.t for s in history] == [BASE + i for i in (0, 1, 2, 3, 4, 8, 9)]
    assert [s.requests for s in history] == [20] * 5 + [4, 4]
    first = recorded[int(BASE)]
    lat = sorted(x for x, _ in first)
    assert history[0].errors == sum(1 for _, ok in first if not ok)
    assert history[0].average_latency_ms == pytest.approx(np.mean(lat) * 1000)
    assert history[0].p95_latency_ms == pytest.approx(lat[int(0.95 * len(lat))] * 1000)
    assert [s.t for s in tracker.history(DEP, seconds=3)] == [BASE + 8, BASE + 9]


def test_history_is_bounded_to_fifteen_minutes() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    for _ in range(1000):
        tracker.record(DEP, V1, 0.01, ok=True)
        clock.t += 1
    history = tracker.history(DEP)
    assert len(history) == 900 and history[0].t >= clock.t - 900


def test_accuracy_comes_from_feedback_in_the_window() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    tracker.record_feedback(DEP, V1, correct=True)  # nothing served yet: nowhere to count it
    assert tracker.get_current_metrics(DEP) is None
    for _ in range(10):
        tracker.record(DEP, V1, 0.01, ok=True)
    for correct in [True] * 7 + [False] * 3:
        tracker.record_feedback(DEP, V1, correct=correct)
    m = tracker.get_current_metrics(DEP)
    assert m.accuracy == pytest.approx(0.7) and m.feedback_in_window == 10
    assert tracker.get_current_metrics(V1).accuracy == pytest.approx(0.7)
    clock.t += 120
    assert tracker.get_current_metrics(DEP).accuracy is None


def test_gauges_and_round_trip() -> None:
    clock = Clock()
    tracker = PerformanceTracker(clock=clock)
    tracker.set_gauges(DEP, lambda: {"queue_depth": 3, "batch_size_distribution": {1: 4, 8: 2}})
    tracker.record(DEP, V1, 0.01, ok=True)
    m = tracker.get_current_metrics(DEP)
    assert m.queue_depth == 3 and m.batch_size_distribution == {1: 4, 8: 2}
    again = PerformanceMetrics.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again == m


# ---- snapshots: the view from another process ---------------------------------------------


def _deploy_and_serve(requests: int) -> DeploymentManager:
    torch.manual_seed(0)
    meta = ModelMetadata(
        model_id="wildlife_detector",
        version="v1.0.0",
        status=ModelStatus.VALIDATION,
        training_config={"labels": ["owl", "hawk", "sparrow", "robin", "background"]},
    )
    get_model_registry().register_model(build_model("small_cnn", 5), meta)
    mgr = get_deployment_manager()
    mgr.deploy_model(DeploymentConfig(model_id="wildlife_detector", version="v1.0.0",
                                      deployment_id=DEP))  # fmt: skip
    audio = generate_call("hawk", np.random.default_rng(1))

    async def serve() -> list[str]:
        results = await asyncio.gather(
            *(mgr.run_inference(audio, request_id=f"snap-{i}") for i in range(requests))
        )
        return [r["request_id"] for r in results]

    request_ids = asyncio.run(serve())
    for request_id in request_ids[:4]:
        predicted = mgr.record_feedback(request_id, "owl")["predicted_class"]
        assert (predicted == "owl") == mgr.record_feedback(request_id, "owl")["correct"]
    return mgr


def test_snapshots_are_read_back_by_another_manager(ctx) -> None:
    mgr = _deploy_and_serve(requests=12)
    local = mgr.performance_tracker.get_current_metrics(DEP)
    assert local.requests_in_window == 12 and local.feedback_in_window == 4

    assert mgr.snapshots.maybe_persist(mgr.performance_tracker, [DEP, "not_here"], force=True) == 1
    assert mgr.snapshots.maybe_persist(mgr.performance_tracker, [DEP]) == 0  # too soon again

    other = DeploymentManager(ctx)  # serves nothing: everything comes from the database
    remote = other.performance_tracker.get_current_metrics(DEP)
    assert remote is not None and remote.model_version == V1
    for field in ("requests_in_window", "errors_in_window", "feedback_in_window", "accuracy",
                  "p95_latency_ms", "average_latency_ms", "batch_size_distribution"):  # fmt: skip
        assert getattr(remote, field) == getattr(local, field), field
    assert [(s.t, s.requests) for s in other.performance_tracker.history(DEP)] == [
        (s.t, s.requests) for s in mgr.performance_tracker.history(DEP)
    ]
    status = other.get_status(DEP)
    assert status["served_here"] is False and status["metrics"]["requests_in_window"] == 12
    assert other.performance_tracker.get_current_metrics("never_served") is None


def test_stale_snapshots_are_ignored(ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    mgr = _deploy_and_serve(requests=2)
    mgr.snapshots.maybe_persist(mgr.performance_tracker, [DEP], force=True)
    monkeypatch.setattr(snapshots_module, "FRESH_FOR_S", -5.0)  # everything is too old now
    assert DeploymentManager(ctx).performance_tracker.get_current_metrics(DEP) is None


def test_snapshots_are_seen_from_another_process(ctx) -> None:
    mgr = _deploy_and_serve(requests=6)
    mgr.snapshots.maybe_persist(mgr.performance_tracker, [DEP], force=True)
    env = dict(os.environ)  # the fixtures' home and database
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "nightscan_tui.cli", "deployment", "status", DEP, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["served_here"] is False
    assert status["metrics"]["requests_in_window"] == 6
    assert status["metrics"]["model_version"] == V1


def test_snapshots_of_several_processes_add_up(ctx) -> None:
    """Two serving processes of one deployment (``serve --workers 2``): a reader sees their
    sum, each process apart, and the seconds of both added."""
    first = _deploy_and_serve(requests=5)
    second = DeploymentManager(ctx)  # another process on the same database
    second.snapshots.process = "host:second"
    audio = generate_call("owl", np.random.default_rng(2))

    async def serve() -> None:
        await asyncio.gather(*(second.run_inference(audio, deployment_id=DEP) for _ in range(3)))

    asyncio.run(serve())
    for mgr in (first, second):
        assert mgr.snapshots.maybe_persist(mgr.performance_tracker, [DEP], force=True) == 1

    reader = DeploymentManager(ctx)
    apart = reader.snapshots.by_process(DEP)
    assert sorted(m.requests_in_window for m in apart.values()) == [3, 5]
    assert set(apart) == {first.snapshots.process, "host:second"}
    total = reader.performance_tracker.get_current_metrics(DEP)
    assert total.requests_in_window == 8 and total.feedback_in_window == 4
    local = [mgr.performance_tracker.get_current_metrics(DEP) for mgr in (first, second)]
    assert total.requests_per_second == pytest.approx(sum(m.requests_per_second for m in local))
    assert total.p95_latency_ms == max(m.p95_latency_ms for m in local)
    assert total.average_latency_ms == pytest.approx(
        sum(m.average_latency_ms * m.requests_in_window for m in local) / 8
    )
    assert sum(s.requests for s in reader.performance_tracker.history(DEP)) == 8
    second.close()


def test_merge_weights_and_bounds() -> None:
    from datetime import UTC, datetime

    from core.deployments.snapshots import merge
    from core.deployments.tracker import PerformanceMetrics

    def part(requests: int, errors: int, mean: float, p95: float, accuracy, labelled: int):
        return PerformanceMetrics(
            deployment_id=DEP, model_version=V1, timestamp=datetime.now(UTC),
            requests_per_second=requests / 60, average_latency_ms=mean, p50_latency_ms=mean,
            p95_latency_ms=p95, p99_latency_ms=p95, error_rate=100 * errors / requests,
            memory_usage_mb=100.0, cpu_usage_percent=50.0, queue_depth=1, accuracy=accuracy,
            feedback_in_window=labelled, batch_size_distribution={1: requests},
            requests_in_window=requests, errors_in_window=errors,
        )  # fmt: skip

    merged = merge([part(30, 3, 10.0, 20.0, 0.5, 4), part(10, 0, 30.0, 50.0, None, 0)])
    assert merged.requests_in_window == 40 and merged.errors_in_window == 3
    assert merged.error_rate == pytest.approx(7.5)
    assert merged.average_latency_ms == pytest.approx(15.0)
    assert merged.p95_latency_ms == 50.0 and merged.accuracy == 0.5
    assert merged.memory_usage_mb == 200.0 and merged.queue_depth == 2
    assert merged.batch_size_distribution == {1: 40}
    assert merge([]) is None
