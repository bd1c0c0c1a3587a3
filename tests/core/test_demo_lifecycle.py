"""The demo keeps living: its real services (uvicorn on loopback, the traffic simulator, the
experiment monitor, the director) on a fast clock, through several experiment lifecycles, then
without any experiment, then with every request refused, which the console is told about.
Plus the director's pure rule and `nightscan demo --reset`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from model_helpers import register_version

from core import ModelMetadata, ModelStatus, get_context, get_model_registry
from core.demo import (
    DEMO_DEPLOYMENT,
    DEMO_EXPERIMENT,
    DEMO_MODEL,
    DemoServices,
    reset_demo_home,
)
from core.demo_canary import start_demo_canary
from core.demo_director import next_experiment, running_experiment
from core.deployments import DeploymentConfig, get_deployment_manager
from core.errors import ConflictError
from core.events import recent_events
from core.experiments import ExperimentConfig, ExperimentStatus, get_ab_test_manager
from core.experiments.models import ExperimentInfo
from core.server.presence import ServerPresence

FAST_DAYS = 1.5 / 86_400  # experiments end by maximum duration after 1.5 s


def demo_config(experiment_id: str = DEMO_EXPERIMENT, days: float = FAST_DAYS):
    return ExperimentConfig(
        experiment_id=experiment_id,
        name="demo",
        model_variants={"control": f"{DEMO_MODEL}:v2.0.0", "treatment": f"{DEMO_MODEL}:v2.1.0"},
        traffic_allocation={"control": 70.0, "treatment": 30.0},
        success_metrics=["accuracy", "confidence"],
        minimum_sample_size=100_000,  # never conclusive here: only the clock ends them
        maximum_duration_days=days,
    )


@pytest.fixture
def fast_demo_home(sqlite_ctx):
    register_version(DEMO_MODEL, "v2.0.0", status=ModelStatus.TESTING)
    register_version(DEMO_MODEL, "v2.1.0", seed=1, status=ModelStatus.TESTING)
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id=DEMO_MODEL, version="v2.0.0", deployment_id=DEMO_DEPLOYMENT)
    )
    ab = get_ab_test_manager()
    ab.create_experiment(demo_config())
    ab.start_experiment(DEMO_EXPERIMENT)
    return sqlite_ctx


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_traffic_outlives_experiments_and_refusals_are_reported(fast_demo_home) -> None:
    ab = get_ab_test_manager()
    services = DemoServices(
        port=0, rate_per_s=20, monitor_interval_s=0.2, director_interval_s=0.2, with_canary=False
    ).start()
    notices: list[tuple[str, str]] = []
    try:

        def completed() -> list[ExperimentInfo]:
            notices.extend(services.notices())
            return ab.list_experiments(ExperimentStatus.COMPLETED)

        def followed() -> list[str]:
            """Completed successors of the seed's experiment that traffic reached. On a loaded
            machine one 1.5 s lifecycle may pass before a request lands; two must not."""
            return [
                e.experiment_id
                for e in completed()
                if e.experiment_id != DEMO_EXPERIMENT
                and sum(ab.store.unit_counts(e.experiment_id).values()) > 0
            ]

        # Several lifecycles: each ends by its clock and the next one starts by itself.
        wait_for(lambda: len(followed()) >= 2, "traffic in two successive experiments")
        ids = [e.experiment_id for e in completed()]
        assert DEMO_EXPERIMENT in ids and f"{DEMO_EXPERIMENT}_2" in ids and len(ids) >= 3
        for info in completed():
            assert info.config.model_variants == {
                "control": f"{DEMO_MODEL}:v2.0.0",
                "treatment": f"{DEMO_MODEL}:v2.1.0",
            }
        served = services.traffic.served
        wait_for(lambda: services.traffic.served >= served + 20, "requests after the lifecycles")
        assert any("traffic now feeds" in message for message, _ in notices)
        assert not any("being refused" in message for message, _ in notices)

        # Nothing newer to test: the current experiment ends and traffic goes on without one.
        get_model_registry().update_status(DEMO_MODEL, "v2.1.0", ModelStatus.FAILED, "bad")
        wait_for(lambda: services.director.target is None, "the director to give up")
        wait_for(lambda: services.traffic.experiment_id is None, "traffic without experiment")
        served = services.traffic.served
        wait_for(lambda: services.traffic.served >= served + 20, "requests without experiment")
        assert ab.list_experiments(ExperimentStatus.RUNNING) == []

        # Nothing can serve: every request is refused, and the console hears of it once.
        get_deployment_manager().undeploy(DEMO_DEPLOYMENT, reason="test")
        wait_for(
            lambda: any("being refused" in m for m, _ in notices + services.notices()),
            "a refusal notice",
        )
    finally:
        services.stop()
    assert services.traffic.refused >= DemoServices.REFUSALS_TO_REPORT


def info(experiment_id: str, status: ExperimentStatus, minutes_ago: int = 0) -> ExperimentInfo:
    at = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    return ExperimentInfo(
        experiment_id=experiment_id,
        name="x",
        description="",
        status=status,
        config=demo_config(experiment_id, days=14),
        allocation={"control": 70.0, "treatment": 30.0},
        allocation_version=1,
        created_at=at,
        created_by="t",
        started_at=at,
        ended_at=None,
        stop_reason="",
        stopped_by="",
    )


def version(v: str, status: ModelStatus = ModelStatus.TESTING) -> ModelMetadata:
    return ModelMetadata(model_id=DEMO_MODEL, version=v, status=status)


def test_the_next_experiment_tests_the_newest_version_against_the_deployed_one() -> None:
    control = f"{DEMO_MODEL}:v2.0.0"
    versions = [version("v2.0.0"), version("v2.1.0"), version("v2.2.0", ModelStatus.FAILED)]
    done = [info(DEMO_EXPERIMENT, ExperimentStatus.COMPLETED, 10)]
    config = next_experiment(done, versions, control, DEMO_EXPERIMENT)
    assert config is not None and config.experiment_id == f"{DEMO_EXPERIMENT}_2"
    assert config.model_variants == {"control": control, "treatment": f"{DEMO_MODEL}:v2.1.0"}
    assert config.maximum_duration_days == 14  # the last one's settings
    newer = [*versions, version("v3.0.0")]
    assert next_experiment(done, newer, control, DEMO_EXPERIMENT).model_variants["treatment"] == (
        f"{DEMO_MODEL}:v3.0.0"
    )
    # One running: nothing to start, and traffic follows the newest running one.
    busy = [*done, info("other", ExperimentStatus.RUNNING, 5), info("b", ExperimentStatus.RUNNING)]
    assert next_experiment(busy, versions, control, DEMO_EXPERIMENT) is None
    assert running_experiment(busy) == "b"
    # Nothing newer than what is deployed: no experiment, traffic goes on without one.
    assert next_experiment(done, versions, f"{DEMO_MODEL}:v2.1.0", DEMO_EXPERIMENT) is None
    assert running_experiment(done) is None


def test_reset_starts_a_demo_home_over_and_refuses_any_other_home(sqlite_ctx) -> None:
    home = sqlite_ctx.settings.home
    register_version(DEMO_MODEL, "v2.0.0")
    assert reset_demo_home() == home
    assert get_model_registry().list_models() == []  # a fresh database, migrated on first use
    assert get_context().audit.entries() == []
    presence = ServerPresence(get_context().db, "http://127.0.0.1:8123").start()
    with pytest.raises(ConflictError, match="serves this home; stop it before --reset"):
        reset_demo_home()
    presence.stop()
    register_version("someone_elses_model", "v1.0.0")
    with pytest.raises(ConflictError, match="holds more than the demo"):
        reset_demo_home()
    refused = subprocess.run(
        [sys.executable, "-m", "nightscan_tui.cli", "demo", "--reset", "--no-console"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 4, refused.stderr
    assert "someone_elses_model" in refused.stderr and "Traceback" not in refused.stderr
    assert get_model_registry().exists("someone_elses_model", "v1.0.0")


def test_the_demo_canary_moves_step_by_step_and_promotes(fast_demo_home) -> None:
    # The demo's rollout on a fast clock: seconds per step instead of minutes.
    fast = {"steps": [5, 25, 50, 100], "step_seconds": 2.0, "analysis_interval_s": 0.5,
            "min_samples": 10, "calibration_samples": 20}  # fmt: skip
    manager = get_deployment_manager()
    services = DemoServices(port=0, rate_per_s=20, monitor_interval_s=0.5, canary=fast).start()
    try:
        assert manager.canaries.active(DEMO_DEPLOYMENT) is not None
        said = services.notices()
        assert any("canary wildlife_detector:v2.1.0 started" in m for m, _ in said), said
        wait_for(lambda: manager.get_deployment(DEMO_DEPLOYMENT).version == "v2.1.0",
                 "the canary to be promoted")  # fmt: skip
        status = manager.canaries.status(DEMO_DEPLOYMENT)
        assert status["state"] == "promoted" and status["requests"]["canary"] >= 10
        weights = [e.data["weight"] for e in reversed(recent_events(kind="canary.stepped"))]
        assert weights == [25.0, 50.0]
        registry = get_model_registry()
        assert registry.get_model(DEMO_MODEL, "v2.1.0").status is ModelStatus.DEPLOYED
        assert registry.get_model(DEMO_MODEL, "v2.0.0").status is ModelStatus.RETIRED
    finally:
        services.stop()
    # Restarted on a promoted home, the demo starts no second canary.
    assert start_demo_canary(DEMO_DEPLOYMENT, fast) is None
