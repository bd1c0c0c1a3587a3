"""Deployments on a real database (SQLite, and PostgreSQL when configured): configuration
validation, deploy / undeploy / rollback, refused and failing versions, automatic rollback on
health-check failures, restore after a restart, and the batching limits of the data plane."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from blob_helpers import tamper_stored_weights

from core import (
    ConflictError,
    ModelMetadata,
    ModelStatus,
    NotFoundError,
    ValidationError,
    context,
    get_model_registry,
)
from core.deployments import DeploymentConfig, DeploymentManager, get_deployment_manager
from core.deployments.config import ResourcesConfig, parse_memory
from core.errors import DeploymentFailedError, OverloadedError, PayloadTooLargeError
from core.events import recent_events
from inference.architectures import build_model
from inference.runtime import threads_per_os_thread
from inference.synthetic import generate_call

MODEL = "wildlife_detector"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
DEP = "wd_prod"
SR = 22_050


def register(
    version: str,
    architecture: str = "small_cnn",
    status: ModelStatus = ModelStatus.VALIDATION,
    seed: int = 0,
) -> ModelMetadata:
    torch.manual_seed(seed)
    meta = ModelMetadata(
        model_id=MODEL,
        version=version,
        status=status,
        architecture=architecture,
        training_config={"labels": LABELS},
    )
    get_model_registry().register_model(build_model(architecture, len(LABELS)), meta)
    return meta


def config(version: str, deployment_id: str = DEP, **kwargs: Any) -> DeploymentConfig:
    return DeploymentConfig(model_id=MODEL, version=version, deployment_id=deployment_id, **kwargs)


def clip(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    return generate_call("owl", np.random.default_rng(seed), seconds=seconds)


def infer(mgr: DeploymentManager, audio: Any = None, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(mgr.run_inference(clip() if audio is None else audio, **kwargs))


def status_of(version: str) -> ModelStatus:
    return get_model_registry().get_model(MODEL, version).status


@pytest.fixture
def mgr(ctx) -> DeploymentManager:
    return get_deployment_manager()


# ---- configuration ----------------------------------------------------------------------------


def test_config_defaults_and_derived_fields() -> None:
    cfg = DeploymentConfig(model_id=MODEL, version="v2.1.0").validate()
    assert cfg.deployment_id == "wildlife_detector_v2_1_0_production"
    assert cfg.model_ref == "wildlife_detector:v2.1.0"
    assert cfg.resources == ResourcesConfig(cpu=1, memory="2Gi", gpu=0)
    assert cfg.memory_bytes == 2 * 1024**3
    # Partial sections (the seed's example gives only some keys) merge over the defaults.
    partial = DeploymentConfig(model_id=MODEL, version="v1", scaling={"max_replicas": 5})
    assert partial.scaling.to_dict() == {
        "min_replicas": 1,
        "max_replicas": 5,
        "target_cpu_utilization": 70,
    }
    assert parse_memory("512Mi") == 512 * 1024**2 and parse_memory("1G") == 10**9
    assert parse_memory(1234) == 1234
    again = DeploymentConfig.from_dict(cfg.to_dict())
    assert again == cfg


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resources": {"memory": "lots"}}, r"resources\.memory 'lots' is not a size"),
        ({"resources": {"memory": "1Mi"}}, r"resources\.memory '1Mi' is below 64Mi"),
        ({"resources": {"cpu": 0}}, r"resources\.cpu must be a number between 0\.1 and 1024"),
        ({"resources": {"gpu": 0.5}}, r"resources\.gpu must be an integer"),
        ({"resources": {"gpus": 1}}, r"unknown resources keys: gpus"),
        (
            {"scaling": {"min_replicas": 3, "max_replicas": 2}},
            r"scaling\.max_replicas \(2\) is below min_replicas \(3\)",
        ),
        ({"scaling": {"min_replicas": 0}}, r"scaling\.min_replicas must be an integer"),
        ({"scaling": {"replicas": 2}}, r"unknown scaling keys: replicas"),
        ({"traffic_percentage": 120.0}, r"traffic_percentage must be a number between 0 and 100"),
        ({"traffic_percentage": -1}, r"traffic_percentage must be a number between 0 and 100"),
        ({"traffic_percentage": True}, r"traffic_percentage must be a number"),
        ({"health_check": {"failure_threshold": 0}}, r"health_check\.failure_threshold"),
        ({"health_check": {"interval": 0}}, r"health_check\.interval must be a number >= 0\.05"),
        ({"health_check": {"retries": 1}}, r"unknown health_check keys: retries"),
        ({"batching": {"max_batch_size": 0}}, r"batching\.max_batch_size must be an integer"),
        (
            {"batching": {"max_batch_size": 32, "queue_capacity": 8}},
            r"queue_capacity must be at least max_batch_size",
        ),
        ({"canary_success_threshold": 1.5}, r"canary_success_threshold must be a number"),
        ({"max_audio_seconds": 0}, r"max_audio_seconds must be a number between 0\.1"),
        ({"deployment_id": "bad id!"}, r"invalid deployment_id 'bad id!'"),
        ({"environment": ""}, r"invalid environment ''"),
    ],
)
def test_config_validation_names_the_fault(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:  # sections: when built
        DeploymentConfig(model_id=MODEL, version="v1.0.0", **fields).validate()
    assert "\n" not in str(caught.value)


def test_config_from_dict_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(ValidationError, match="unknown deployment fields: replicas"):
        DeploymentConfig.from_dict({"model_id": MODEL, "version": "v1", "replicas": 3})
    with pytest.raises(ValidationError, match="deployment config needs version"):
        DeploymentConfig.from_dict({"model_id": MODEL})


def test_config_from_toml_and_json_files(tmp_path: Path) -> None:
    toml = tmp_path / "deploy.toml"
    toml.write_text(
        textwrap.dedent(
            """
            model_id = "wildlife_detector"
            version = "v2.1.0"
            environment = "staging"
            traffic_percentage = 25.0

            [resources]
            cpu = 2
            memory = "4Gi"

            [batching]
            max_batch_size = 4
            """
        )
    )
    cfg = DeploymentConfig.from_file(toml, deployment_id="from_cli", environment=None).validate()
    assert cfg.deployment_id == "from_cli" and cfg.environment == "staging"
    assert cfg.resources.to_dict() == {"cpu": 2, "memory": "4Gi", "gpu": 0}
    assert cfg.batching.max_batch_size == 4 and cfg.traffic_percentage == 25.0

    js = tmp_path / "deploy.json"
    js.write_text(json.dumps({"model_id": MODEL, "version": "v1", "scaling": {"max_replicas": 4}}))
    cfg = DeploymentConfig.from_file(js, version="v2").validate()
    assert cfg.version == "v2" and cfg.scaling.max_replicas == 4

    (tmp_path / "bad.toml").write_text("model_id = \n")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "unknown.json").write_text(json.dumps({"model_id": MODEL, "version": "v1", "x": 1}))
    for name, message in (
        ("missing.toml", "config file not found"),
        ("bad.toml", "cannot parse"),
        ("list.json", "must hold a table/object"),
        ("unknown.json", "unknown deployment fields: x"),
    ):
        with pytest.raises(ValidationError, match=message):
            DeploymentConfig.from_file(tmp_path / name)


# ---- deploy -----------------------------------------------------------------------------------


def test_deploy_serves_persists_audits_and_announces(ctx, mgr: DeploymentManager) -> None:
    register("v1.0.0")
    assert mgr.deploy_model(config("v1.0.0")) is True

    assert status_of("v1.0.0") is ModelStatus.DEPLOYED
    info = mgr.get_deployment(DEP)
    assert (info.version, info.status, info.health, info.generation) == ("v1.0.0", "running",
                                                                          "healthy", 1)  # fmt: skip
    assert [d.deployment_id for d in mgr.list_deployments()] == [DEP]
    assert [(r.version, r.status) for r in mgr.revisions(DEP)] == [("v1.0.0", "active")]
    audit = ctx.audit.entries(entity_type="deployment", entity_id=DEP)
    assert [a.action for a in audit] == ["deployment.deploy"]
    assert audit[0].after["model_version"] == f"{MODEL}:v1.0.0" and audit[0].actor == "tester"
    events = recent_events(kind="deployment.deployed")
    assert events and events[0].source == DEP and events[0].data["model_version"].endswith("v1.0.0")

    # Persisted: another manager on the same database sees it (and could serve it).
    other = DeploymentManager(ctx)
    assert other.get_deployment(DEP).model_ref == f"{MODEL}:v1.0.0"
    status = other.get_status(DEP)
    assert status["served_here"] is False and status["config"]["deployment_id"] == DEP

    result = infer(mgr, request_id="r1")
    assert result["request_id"] == "r1" and result["model_version"] == f"{MODEL}:v1.0.0"
    assert result["variant"] is None and result["deployment_id"] == DEP
    assert result["inference_time"] > 0
    predictions = result["predictions"]
    assert set(predictions["probabilities"]) == set(LABELS)
    assert sum(predictions["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    best = max(predictions["probabilities"], key=predictions["probabilities"].get)
    assert predictions["predicted_class"] == best
    assert predictions["confidence"] == predictions["probabilities"][best]
    assert mgr.get_status(DEP)["served_here"] is True


@pytest.mark.parametrize("status", [ModelStatus.TRAINING, ModelStatus.FAILED])
def test_deploy_refuses_training_and_failed_versions(ctx, mgr, status: ModelStatus) -> None:
    register("v1.0.0", status=status)
    with pytest.raises(ConflictError, match=f"is {status.value.upper()}"):
        mgr.deploy_model(config("v1.0.0"))
    assert mgr.list_deployments(include_stopped=True) == []
    assert status_of("v1.0.0") is status
    with pytest.raises(NotFoundError):
        mgr.deploy_model(config("v9.9.9"))


def test_tampered_artifact_fails_and_previous_version_keeps_serving(ctx, mgr) -> None:
    register("v1.0.0", seed=1)
    tampered = register("v2.0.0", seed=2)
    mgr.deploy_model(config("v1.0.0"))
    tamper_stored_weights(ctx, tampered.checksum)

    with pytest.raises(DeploymentFailedError) as caught:
        mgr.deploy_model(config("v2.0.0"))
    message = str(caught.value)
    assert "checksum" in message and tampered.checksum in message
    assert f"{MODEL}:v1.0.0 keeps serving" in message

    assert mgr.get_deployment(DEP).version == "v1.0.0"
    assert infer(mgr)["model_version"] == f"{MODEL}:v1.0.0"
    revisions = mgr.revisions(DEP)
    assert [(r.version, r.status) for r in revisions] == [("v1.0.0", "active"),
                                                          ("v2.0.0", "failed")]  # fmt: skip
    assert "checksum" in revisions[-1].reason
    assert status_of("v2.0.0") is ModelStatus.FAILED
    assert status_of("v1.0.0") is ModelStatus.DEPLOYED
    assert ctx.audit.entries(action="deployment.failed")[0].entity_id == DEP
    assert recent_events(kind="deployment.failed")[0].severity == "critical"


@pytest.mark.parametrize(
    ("factory", "health_timeout", "reason"),
    [
        ("broken", 5.0, "forward always fails"),
        ("nan_output", 5.0, "not a probability distribution"),
        ("slow", 0.05, "no answer within 0.05s"),
    ],
)
def test_a_model_that_fails_warm_up_or_health_is_refused(
    ctx, mgr, models_module, factory: str, health_timeout: float, reason: str
) -> None:
    register("v1.0.0")
    register("v2.0.0", architecture=f"{models_module.__name__}:{factory}")
    mgr.deploy_model(config("v1.0.0"))
    with pytest.raises(DeploymentFailedError, match=reason):
        mgr.deploy_model(config("v2.0.0", health_check={"timeout": health_timeout}))
    assert mgr.get_deployment(DEP).version == "v1.0.0"
    assert infer(mgr)["model_version"] == f"{MODEL}:v1.0.0"
    assert mgr.revisions(DEP)[-1].status == "failed"
    assert status_of("v2.0.0") is ModelStatus.FAILED


def test_first_deploy_failure_leaves_nothing_deployed(ctx, mgr, models_module) -> None:
    register("v1.0.0", architecture=f"{models_module.__name__}:broken")
    with pytest.raises(DeploymentFailedError, match="nothing was deployed"):
        mgr.deploy_model(config("v1.0.0"))
    assert mgr.list_deployments(include_stopped=True) == []
    with pytest.raises(NotFoundError, match="no healthy deployment"):
        infer(mgr)


def test_gpu_request_without_cuda_serves_on_cpu_with_a_warning(ctx, mgr) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    register("v1.0.0")
    mgr.deploy_model(config("v1.0.0", resources={"gpu": 1}))
    assert mgr.get_status(DEP)["device"] == "cpu"
    event = recent_events(kind="deployment.gpu_unavailable")[0]
    assert event.severity == "warning" and "CUDA" in event.message


def test_traffic_split_between_deployments_without_experiment(ctx, mgr) -> None:
    register("v1.0.0")
    register("v2.0.0", seed=1)
    mgr.deploy_model(config("v1.0.0", "wd_a", traffic_percentage=75.0))
    mgr.deploy_model(config("v2.0.0", "wd_b", traffic_percentage=25.0))

    async def run() -> list[str]:
        audio = clip()
        results = await asyncio.gather(
            *(mgr.run_inference(audio, request_id=f"split-{i}") for i in range(200))
        )
        return [r["deployment_id"] for r in results]

    served = asyncio.run(run())
    share_a = served.count("wd_a") / len(served)
    assert 0.6 < share_a < 0.9 and set(served) == {"wd_a", "wd_b"}
    # Sticky: the same request id always lands on the same deployment.
    assert infer(mgr, request_id="split-7")["deployment_id"] == served[7]
    assert infer(mgr, model_id=MODEL, deployment_id="wd_b")["deployment_id"] == "wd_b"


# ---- undeploy and rollback --------------------------------------------------------------------


def test_undeploy_retires_unless_served_elsewhere(ctx, mgr) -> None:
    register("v1.0.0")
    mgr.deploy_model(config("v1.0.0", "wd_a"))
    mgr.deploy_model(config("v1.0.0", "wd_b"))
    mgr.undeploy("wd_a", reason="done")
    assert status_of("v1.0.0") is ModelStatus.DEPLOYED  # wd_b still serves it
    mgr.undeploy("wd_b")
    assert status_of("v1.0.0") is ModelStatus.RETIRED

    assert mgr.list_deployments() == []
    stopped = {d.deployment_id: d for d in mgr.list_deployments(include_stopped=True)}
    assert stopped["wd_a"].status == "stopped" and stopped["wd_a"].reason == "done"
    assert mgr.revisions("wd_a")[-1].status == "stopped"
    assert ctx.audit.entries(action="deployment.undeploy")[0].entity_id == "wd_b"
    assert mgr.pool.deployments == {}
    with pytest.raises(ConflictError, match="already stopped"):
        mgr.undeploy("wd_a")
    with pytest.raises(NotFoundError):
        mgr.undeploy("nope")
    with pytest.raises(NotFoundError, match="no healthy deployment"):
        infer(mgr)
    with pytest.raises(NotFoundError, match="is stopped"):
        infer(mgr, deployment_id="wd_a")
    assert mgr.health("wd_a")["healthy"] is False


def test_rollback_switches_to_the_previous_version_and_marks_revisions(ctx, mgr) -> None:
    for i, version in enumerate(("v1.0.0", "v2.0.0", "v3.0.0")):
        register(version, seed=i)
        mgr.deploy_model(config(version))
    assert status_of("v1.0.0") is ModelStatus.RETIRED

    info = mgr.rollback_deployment(DEP, reason="bad canary")
    assert info.version == "v2.0.0" and info.reason == "rolled back: bad canary"
    assert infer(mgr)["model_version"] == f"{MODEL}:v2.0.0"
    assert status_of("v3.0.0") is ModelStatus.RETIRED
    assert status_of("v2.0.0") is ModelStatus.DEPLOYED
    event = recent_events(kind="deployment.rolled_back")[0]
    assert event.data["from"].endswith("v3.0.0") and event.data["to"].endswith("v2.0.0")
    assert ctx.audit.entries(action="deployment.rollback")[0].detail == "bad canary"

    info = mgr.rollback_deployment(DEP)
    assert info.version == "v1.0.0"
    assert [(r.version, r.status) for r in mgr.revisions(DEP)] == [
        ("v1.0.0", "restored"),
        ("v2.0.0", "restored"),
        ("v3.0.0", "rolled_back"),
        ("v2.0.0", "rolled_back"),
        ("v1.0.0", "active"),
    ]
    assert infer(mgr)["model_version"] == f"{MODEL}:v1.0.0"
    # Never forward again to a version that was rolled back from.
    with pytest.raises(ConflictError, match="no earlier healthy version"):
        mgr.rollback_deployment(DEP)
    assert mgr.get_deployment(DEP).version == "v1.0.0"


def test_resources_cpu_sets_torch_threads_per_deployment(ctx, mgr) -> None:
    """Each deployment's runtime runs with its own resources.cpu threads; the last deploy no
    longer sets everyone's (README, "What resources.cpu means")."""
    register("v1.0.0")
    register("v2.0.0", seed=1)
    main_thread = torch.get_num_threads()
    two_replicas = {"min_replicas": 2, "max_replicas": 2}
    mgr.deploy_model(config("v1.0.0", "one", resources={"cpu": 1}, scaling=two_replicas))
    mgr.deploy_model(config("v2.0.0", "two", resources={"cpu": 2}))
    one = mgr.pool.model_for("one")[1].runtime
    two = mgr.pool.model_for("two")[1].runtime
    if threads_per_os_thread():
        assert (one.threads, two.threads) == (1, min(2, os.cpu_count() or 1))
    assert one.replicas == 2 and two.replicas == 1
    assert infer(mgr, deployment_id="one")["model_version"] == f"{MODEL}:v1.0.0"
    assert torch.get_num_threads() == main_thread


def test_rollback_without_a_previous_version_is_a_conflict(ctx, mgr) -> None:
    register("v1.0.0")
    mgr.deploy_model(config("v1.0.0"))
    with pytest.raises(ConflictError, match="no earlier healthy version"):
        mgr.rollback_deployment(DEP)
    assert mgr.get_deployment(DEP).generation == 1
    with pytest.raises(NotFoundError):
        mgr.rollback_deployment("nope")
    mgr.undeploy(DEP)
    with pytest.raises(ConflictError, match="is stopped, not running"):
        mgr.rollback_deployment(DEP)


def test_rollback_under_concurrent_load_fails_no_request(ctx, mgr, models_module) -> None:
    arch = f"{models_module.__name__}:flaky"
    register("v1.0.0", architecture=arch, seed=1)
    register("v2.0.0", architecture=arch, seed=2)
    batching = {"max_batch_size": 4, "max_batch_delay_ms": 1.0, "queue_capacity": 512}
    mgr.deploy_model(config("v1.0.0", batching=batching))
    mgr.deploy_model(config("v2.0.0", batching=batching))
    models_module.STATE["delay"] = 0.005  # keeps requests queued and in flight at the switch
    audio = clip()

    async def scenario() -> tuple[list[str], list[str], int]:
        served: list[str] = []
        errors: list[str] = []
        stop = asyncio.Event()

        async def client(i: int) -> None:
            n = 0
            while not stop.is_set():
                try:
                    r = await mgr.run_inference(audio, request_id=f"load-{i}-{n}")
                    served.append(r["model_version"])
                except Exception as exc:  # every failure is a test failure
                    errors.append(repr(exc))
                n += 1

        async def settle() -> None:
            target = len(served) + len(errors) + 30
            while len(served) + len(errors) < target:
                await asyncio.sleep(0.002)

        tasks = [asyncio.create_task(client(i)) for i in range(12)]
        await settle()
        first_switch = len(served)
        # Each switch is a chance for a request to pick the old runtime just as it closes.
        for _ in range(3):
            await asyncio.to_thread(mgr.rollback_deployment, DEP, "under load")
            await settle()
            await asyncio.to_thread(mgr.deploy_model, config("v2.0.0", batching=batching))
            await settle()
        await asyncio.to_thread(mgr.rollback_deployment, DEP, "under load")
        await settle()
        stop.set()
        await asyncio.gather(*tasks)
        return served, errors, first_switch

    served, errors, first_switch = asyncio.run(scenario())
    assert errors == []
    assert set(served[:first_switch]) == {f"{MODEL}:v2.0.0"}
    assert served[-1] == f"{MODEL}:v1.0.0"
    assert served.count(f"{MODEL}:v1.0.0") >= 4 * 20
    assert mgr.get_deployment(DEP).version == "v1.0.0"


def test_a_request_that_picked_the_old_version_just_before_the_switch_succeeds(
    ctx, mgr, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the load test hits by chance, made certain: the switch (and the old runtime's
    close) happens between choosing the runtime and queueing on it."""
    register("v1.0.0", seed=1)
    register("v2.0.0", seed=2)
    mgr.deploy_model(config("v1.0.0"))
    mgr.deploy_model(config("v2.0.0"))
    switched: list[str] = []

    def pick_then_switch(pick: Any, *args: Any) -> Any:
        target = pick(*args)
        if target is not None and not switched:
            switched.append(mgr.rollback_deployment(DEP, "race").version)
            old_runtime = target[2].runtime
            for _ in range(500):
                if old_runtime.closed:
                    break
                time.sleep(0.01)
            assert old_runtime.closed
        return target

    # Both ways a request picks its runtime: from memory, and (when that needs the database)
    # in a thread.
    for name in ("_served_target", "_target"):
        pick = functools.partial(pick_then_switch, getattr(mgr.predictor, name))
        monkeypatch.setattr(mgr.predictor, name, pick)
    result = infer(mgr)
    assert switched == ["v1.0.0"] and result["model_version"] == f"{MODEL}:v1.0.0"


def test_deployments_are_restored_after_a_restart(ctx, mgr) -> None:
    register("v1.0.0")
    mgr.deploy_model(config("v1.0.0"))
    before = infer(mgr)["predictions"]["probabilities"]
    home, url = ctx.settings.home, ctx.settings.database_url
    fresh = context.configure(home, url)  # closes the old context and its manager (drained)
    try:
        restarted = get_deployment_manager()
        assert restarted is not mgr and restarted.pool.deployments == {}
        restarted.reconcile()
        assert list(restarted.pool.deployments) == [DEP]
        result = infer(restarted)
        assert result["model_version"] == f"{MODEL}:v1.0.0"
        assert result["predictions"]["probabilities"] == pytest.approx(before, abs=1e-6)
        assert get_model_registry().get_model(MODEL, "v1.0.0").status is ModelStatus.DEPLOYED
    finally:
        fresh.close()


# ---- health checks ----------------------------------------------------------------------------


def test_failed_health_checks_trigger_automatic_rollback(ctx, mgr, models_module) -> None:
    register("v1.0.0")
    register("v2.0.0", architecture=f"{models_module.__name__}:flaky")
    health_check = {"interval": 0.05, "timeout": 5, "failure_threshold": 2}
    mgr.deploy_model(config("v1.0.0", health_check=health_check))
    mgr.deploy_model(config("v2.0.0", health_check=health_check, rollback_on_error=True))
    assert mgr.health(DEP)["healthy"] is True

    models_module.STATE["fail"] = True
    first = mgr.health(DEP)
    assert first["healthy"] is False and first["consecutive_failures"] == 1
    assert "forward failed" in first["detail"]
    assert mgr.get_deployment(DEP).version == "v2.0.0"  # below the threshold: no action yet

    second = mgr.health(DEP)
    assert second["healthy"] is False and second["consecutive_failures"] == 2
    info = mgr.get_deployment(DEP)
    assert info.version == "v1.0.0" and "2 consecutive failed health checks" in info.reason
    assert status_of("v2.0.0") is ModelStatus.FAILED
    assert status_of("v1.0.0") is ModelStatus.DEPLOYED
    unhealthy = recent_events(kind="deployment.unhealthy")[0]
    assert unhealthy.data["consecutive_failures"] == 2
    rolled = recent_events(kind="deployment.rolled_back")[0]
    assert "forward failed" in rolled.data["evidence"]["detail"]
    assert mgr.revisions(DEP)[-1].actor == "health-check"
    assert infer(mgr)["model_version"] == f"{MODEL}:v1.0.0"
    assert mgr.health(DEP)["healthy"] is True


def test_serving_loop_marks_unhealthy_and_recovers_without_rollback(
    ctx, mgr, models_module
) -> None:
    register("v1.0.0", architecture=f"{models_module.__name__}:flaky")
    health_check = {"interval": 0.05, "timeout": 5, "failure_threshold": 2}
    mgr.deploy_model(config("v1.0.0", health_check=health_check, rollback_on_error=False))
    models_module.STATE["fail"] = True

    def tick_until(predicate) -> None:
        for _ in range(100):
            time.sleep(0.06)  # past the probe interval, so every tick probes
            mgr.tick()
            if predicate():
                return
        raise AssertionError("the serving loop never reached the expected state")

    tick_until(lambda: mgr.get_deployment(DEP).health == "unhealthy")
    assert mgr.get_deployment(DEP).version == "v1.0.0"  # rollback_on_error=False
    assert recent_events(kind="deployment.rolled_back") == []
    with pytest.raises(NotFoundError, match="no healthy deployment"):
        infer(mgr)

    models_module.STATE["fail"] = False
    tick_until(lambda: mgr.get_deployment(DEP).health == "healthy")
    assert infer(mgr)["model_version"] == f"{MODEL}:v1.0.0"


def test_due_probes_run_at_once_so_a_hung_model_delays_no_other(ctx, mgr, models_module) -> None:
    """Each model's forward waits for the other's (a barrier). Probed one after the other, the
    first probe would wait alone and time out; probed at once, both meet and pass."""
    arch = f"{models_module.__name__}:flaky"
    register("v1.0.0", architecture=arch)
    register("v2.0.0", architecture=arch)
    health_check = {"interval": 0.05, "timeout": 10, "failure_threshold": 1}
    for version, dep in (("v1.0.0", "a"), ("v2.0.0", "b")):
        mgr.deploy_model(config(version, dep, health_check=health_check, rollback_on_error=False))
    models_module.STATE["barrier"] = threading.Barrier(2, timeout=60)
    time.sleep(0.06)  # both probes are due
    mgr.tick()
    assert [mgr.get_deployment(d).health for d in ("a", "b")] == ["healthy", "healthy"]
    assert models_module.STATE["barrier"].n_waiting == 0
    models_module.STATE["barrier"] = None


# ---- batching limits --------------------------------------------------------------------------


def test_full_queue_is_refused_with_retry_after(ctx, mgr, models_module) -> None:
    register("v1.0.0", architecture=f"{models_module.__name__}:flaky")
    mgr.deploy_model(
        config(
            "v1.0.0",
            batching={"max_batch_size": 1, "max_batch_delay_ms": 0, "queue_capacity": 1},
            scaling={"min_replicas": 1, "max_replicas": 1},
        )
    )
    models_module.STATE["delay"] = 0.3
    audio = clip()

    async def burst() -> list[Any]:
        return await asyncio.gather(
            *(mgr.run_inference(audio) for _ in range(8)), return_exceptions=True
        )

    outcomes = asyncio.run(burst())
    overloaded = [o for o in outcomes if isinstance(o, OverloadedError)]
    served = [o for o in outcomes if isinstance(o, dict)]
    assert len(overloaded) + len(served) == 8, outcomes
    assert overloaded and served
    assert all(o.retry_after_s >= 1 and "at capacity" in str(o) for o in overloaded)
    runtime = mgr.pool.model_for(DEP)[1].runtime
    assert runtime.queue_depth == 0
    metrics = mgr.performance_tracker.get_current_metrics(DEP)
    assert metrics.errors_in_window == len(overloaded)
    assert metrics.error_rate == pytest.approx(100 * len(overloaded) / 8)
    models_module.STATE["delay"] = 0.0
    assert infer(mgr)["model_version"] == f"{MODEL}:v1.0.0"  # still serving


def test_batches_never_exceed_max_batch_size(ctx, mgr, models_module) -> None:
    register("v1.0.0", architecture=f"{models_module.__name__}:flaky")
    mgr.deploy_model(
        config(
            "v1.0.0",
            batching={"max_batch_size": 4, "max_batch_delay_ms": 5, "queue_capacity": 256},
        )
    )
    models_module.STATE["delay"] = 0.01  # requests pile up while a batch runs
    short, long = clip(1.0), clip(3.0)  # one window, three windows

    async def load() -> list[dict[str, Any]]:
        calls = [mgr.run_inference(short) for _ in range(36)]
        calls += [mgr.run_inference(long) for _ in range(4)]
        return await asyncio.gather(*calls)

    results = asyncio.run(load())
    assert len(results) == 40
    runtime = mgr.pool.model_for(DEP)[1].runtime
    counts = runtime.batch_size_counts()
    assert max(counts) <= 4
    assert max(counts) > 1  # dynamic batching did group requests
    probe_rows = 1  # the deploy's health probe went through the same queue
    assert sum(size * n for size, n in counts.items()) == 36 + 4 * 3 + probe_rows
    metrics = mgr.performance_tracker.get_current_metrics(DEP)
    assert metrics.batch_size_distribution == counts
    assert metrics.requests_in_window == 40 and metrics.errors_in_window == 0


def test_audio_longer_than_the_maximum_is_payload_too_large(ctx, mgr) -> None:
    register("v1.0.0")
    mgr.deploy_model(config("v1.0.0", max_audio_seconds=2.0))
    with pytest.raises(PayloadTooLargeError, match="the limit is 2 s"):
        infer(mgr, clip(3.0))
    with pytest.raises(ValidationError, match="NaN or infinite"):
        infer(mgr, np.array([0.1, np.nan, 0.2], dtype=np.float32))
    with pytest.raises(ValidationError, match="no samples"):
        infer(mgr, np.zeros(0, dtype=np.float32))
    with pytest.raises(ValidationError, match="could not decode"):
        infer(mgr, b"definitely not audio")
    assert infer(mgr, clip(2.0))["model_version"] == f"{MODEL}:v1.0.0"


# ---- the prediction log -----------------------------------------------------------------------


def test_prediction_log_joins_across_logs_and_counts_first_feedback_once(ctx) -> None:
    """Two logs on one database stand for two server processes (or one before and after a
    restart): what one remembered the other finds, and only one claim of a label wins."""
    from core.deployments.prediction_log import Prediction, PredictionLog

    here, there = PredictionLog(ctx.db), PredictionLog(ctx.db)
    ref, labels = f"{MODEL}:v1.0.0", ("owl", "hawk")
    first = Prediction("r1", DEP, ref, labels, "owl", "exp", "b", (7, "canary"))
    here.remember(first)
    here.remember(Prediction("r2", DEP, ref, labels, "hawk"))
    here.flush()
    assert there.find("r1") == first  # read back from the table, canary arm and all
    assert there.find("r2") == Prediction("r2", DEP, ref, labels, "hawk")
    assert there.claim("r1", True) == (True, True)
    assert here.claim("r1", False) == (False, True)  # the first label stands, in any process
    assert there.find("missing") is None
    here.close()
    there.close()
