"""A seeded console home, built once per test process and copied for each test.

Everything the screens show is fixed: registration times, status changes, audit and event times
(every ``utcnow`` alias in core and data is replaced by a clock that ticks one second per call
while seeding), weights (seeded), metrics and experiment results (seeded). Snapshot tests also
freeze the screens' own clock and the deployment tracker.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

MODEL = "wildlife_detector"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
DEPLOYMENT = "wildlife_prod"
EXPERIMENT = "accuracy_test"
BANDIT = "bandit_test"
DRAFT = "draft_test"
SEEDED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FROZEN_NOW = datetime(2025, 6, 1, 14, 30, tzinfo=UTC)

VERSIONS: list[dict[str, Any]] = [
    dict(
        model_id=MODEL, version="v1.0.0", seed=1, status="testing", tags=["baseline"],
        metrics={"accuracy": 0.812, "f1_score": 0.804, "precision": 0.83, "recall": 0.81,
                 "inference_time_ms": 14.2},
    ),
    dict(
        model_id=MODEL, version="v1.1.0", seed=2, status="testing", tags=["production"],
        metrics={"accuracy": 0.861, "f1_score": 0.855, "precision": 0.87, "recall": 0.86,
                 "inference_time_ms": 12.9},
    ),
    dict(
        model_id=MODEL, version="v2.0.0", seed=3, status="validation",
        tags=["candidate", "high-accuracy"],
        metrics={"accuracy": 0.934, "f1_score": 0.921, "precision": 0.93, "recall": 0.92,
                 "inference_time_ms": 16.4},
    ),
    dict(
        model_id="owl_detector", version="v0.1.0", seed=4, status="training", tags=["owls"],
        metrics={"accuracy": 0.702, "f1_score": 0.688},
    ),
]  # fmt: skip


class TickingClock:
    """Deterministic ``utcnow``: one second later on every call (thread-safe)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=1)
            return self.now


def freeze_utcnow(clock: Callable[[], datetime]) -> Callable[[], None]:
    """Point every module-level ``utcnow`` alias in core and data at ``clock``; returns undo."""
    import data.types

    original = data.types.utcnow
    patched = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("core", "data") and getattr(module, "utcnow", None) is original:
            module.utcnow = clock
            patched.append(module)

    def undo() -> None:
        for module in patched:
            module.utcnow = original

    return undo


def _seed(home: Path) -> None:
    import torch

    import core.audit  # noqa: F401 - loaded so that their utcnow is frozen too
    import core.events
    import core.experiments.manager  # noqa: F401
    from core import ModelMetadata, context, get_model_registry
    from core.deployments import DeploymentConfig, get_deployment_manager
    from core.experiments import ExperimentConfig, get_ab_test_manager
    from inference.architectures import build_model

    ctx = context.configure(home)
    clock = TickingClock(SEEDED_AT)
    undo = freeze_utcnow(clock)
    try:
        registry = get_model_registry()
        for i, spec in enumerate(VERSIONS):
            torch.manual_seed(spec["seed"])
            meta = ModelMetadata(
                model_id=spec["model_id"],
                version=spec["version"],
                name=f"{spec['model_id']} {spec['version']}",
                description="seeded for the console tests",
                created_at=SEEDED_AT - timedelta(days=30 - 7 * i),
                status="validation" if spec["status"] != "training" else "training",
                dataset_version="synthetic-v1",
                training_config={"labels": LABELS, "epochs": 4 + i, "seed": spec["seed"]},
                metrics=spec["metrics"],
                tags=spec["tags"],
            )
            registry.register_model(build_model("small_cnn", len(LABELS)).eval(), meta)
            if spec["status"] == "testing":
                registry.update_status(MODEL, spec["version"], "testing", "staging checks")

        deployments = get_deployment_manager()
        for version in ("v1.0.0", "v1.1.0"):  # v1.0.0 is replaced: a rollback target
            deployments.deploy_model(
                DeploymentConfig(model_id=MODEL, version=version, deployment_id=DEPLOYMENT)
            )

        ab = get_ab_test_manager()
        ab.clock = clock
        ab.create_experiment(
            ExperimentConfig(
                experiment_id=EXPERIMENT,
                name="v2.0 against production",
                model_variants={"control": f"{MODEL}:v1.1.0", "treatment": f"{MODEL}:v2.0.0"},
                traffic_allocation={"control": 70.0, "treatment": 30.0},
                success_metrics=["accuracy", "confidence", "inference_time"],
                minimum_sample_size=500,
            )
        )
        ab.start_experiment(EXPERIMENT)
        rng = random.Random(7)
        results = []
        for i in range(700):
            variant = "control" if i % 10 < 7 else "treatment"
            good = 0.86 if variant == "control" else 0.93
            metrics = {
                "accuracy": float(rng.random() < good),
                "confidence": round(rng.gauss(0.7 if variant == "control" else 0.8, 0.1), 4),
                "inference_time": round(rng.gauss(0.012, 0.002), 5),
            }
            results.append((EXPERIMENT, f"req-{i:04d}", variant, metrics))
        ab.record_results(results)

        ab.create_experiment(
            ExperimentConfig(
                experiment_id=BANDIT,
                name="bandit between candidates",
                model_variants={"control": f"{MODEL}:v1.1.0", "treatment": f"{MODEL}:v2.0.0"},
                traffic_allocation={"control": 50.0, "treatment": 50.0},
                success_metrics=["accuracy"],
                allocation_mode="thompson_sampling",
                minimum_sample_size=300,
            )
        )
        ab.start_experiment(BANDIT)
        for round_ in range(3):
            batch = [
                (BANDIT, f"b{round_}-{i}", "control" if i % 2 else "treatment",
                 {"accuracy": float(rng.random() < (0.85 if i % 2 else 0.93))})
                for i in range(80)
            ]  # fmt: skip
            ab.record_results(batch)
            ab.update_bandit_allocation(BANDIT, force=True)

        ab.create_experiment(
            ExperimentConfig(
                experiment_id=DRAFT,
                name="draft: not started",
                model_variants={"control": f"{MODEL}:v1.1.0", "treatment": f"{MODEL}:v2.0.0"},
                traffic_allocation={"control": 50.0, "treatment": 50.0},
                success_metrics=["accuracy"],
            )
        )
        core.events.emit(
            "alert.firing",
            "HighLatency firing: p95 above 50 ms for 5 minutes",
            source=DEPLOYMENT,
            severity="warning",
            data={"alert": "HighLatency", "value": 61.5, "threshold": 50},
        )
    finally:
        undo()
        ctx.close()
        context._context = None


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests are async: they run on anyio's pytest plugin, on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def console_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("console") / "home"
    saved = {k: os.environ.get(k) for k in ("NIGHTSCAN_HOME", "NIGHTSCAN_DATABASE_URL")}
    os.environ["NIGHTSCAN_HOME"] = str(home)
    os.environ.pop("NIGHTSCAN_DATABASE_URL", None)
    try:
        _seed(home)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return home


@pytest.fixture
def console_home(console_template: Path, tmp_path: Path) -> Iterator[Path]:
    """A fresh copy of the seeded home, configured as the core context."""
    from core import context

    home = tmp_path / "home"
    shutil.copytree(console_template, home)
    ctx = context.configure(home)
    yield home
    ctx.close()
    context._context = None


@pytest.fixture
def frozen_screens(monkeypatch: pytest.MonkeyPatch, console_home: Path) -> Iterator[None]:
    """Fixed clock and tracker numbers for snapshots (UTC, so local time is the same anywhere)."""
    from core.deployments import PerformanceMetrics, SecondSample, get_deployment_manager
    from core.experiments import get_ab_test_manager
    from screens import fmt

    saved_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    monkeypatch.setattr(fmt, "now", lambda: FROZEN_NOW)
    now_ts = FROZEN_NOW.timestamp()
    monkeypatch.setattr(fmt, "now_ts", lambda: now_ts)
    get_ab_test_manager().clock = lambda: FROZEN_NOW

    tracker = get_deployment_manager().performance_tracker

    def metrics(deployment_id: str, window_seconds: float = 60.0) -> PerformanceMetrics | None:
        if deployment_id != DEPLOYMENT:
            return None
        return PerformanceMetrics(
            deployment_id=DEPLOYMENT,
            model_version=f"{MODEL}:v1.1.0",
            timestamp=FROZEN_NOW,
            requests_per_second=7.9,
            average_latency_ms=11.4,
            p50_latency_ms=9.8,
            p95_latency_ms=24.6,
            p99_latency_ms=41.0,
            error_rate=0.4,
            memory_usage_mb=512.0,
            cpu_usage_percent=37.0,
            queue_depth=3,
            accuracy=0.87,
            feedback_in_window=410,
            batch_size_distribution={1: 220, 2: 90, 4: 40, 8: 12},
            requests_in_window=474,
            errors_in_window=2,
        )

    def history(deployment_id: str, seconds: float = 900) -> list[SecondSample]:
        if deployment_id != DEPLOYMENT:
            return []
        end = int(now_ts)
        out = []
        for k in range(int(seconds)):
            t = end - int(seconds) + 1 + k
            wave = (k % 60) / 60
            requests = 6 + int(4 * wave)
            out.append(
                SecondSample(float(t), requests, int(k % 97 == 0), 9 + 5 * wave, 18 + 12 * wave)
            )
        return out

    monkeypatch.setattr(tracker, "get_current_metrics", metrics)
    monkeypatch.setattr(tracker, "history", history)
    yield
    if saved_tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved_tz
    time.tzset()
