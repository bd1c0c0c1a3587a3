"""The registry and the deployments never disagree: registry changes that would break an
invariant are refused with one line naming the deployment, DEPLOYED is set only by deploying,
and a database left inconsistent by an older version is reported and repaired on start."""

from __future__ import annotations

import pytest
import torch
from sqlmodel import select

from core import ConflictError, ModelMetadata, ModelStatus, get_model_registry
from core.deployments import invariants
from core.deployments.canary_store import CanaryStore
from core.deployments.config import DeploymentConfig
from core.deployments.store import DeploymentStore
from core.events import recent_events
from data.deployment_tables import DeploymentRow
from data.tables import ModelVersionRow
from inference.architectures import build_model

MODEL, DEP = "wd", "prod"


@pytest.fixture
def store(ctx) -> DeploymentStore:
    registry = get_model_registry()
    for i, version in enumerate(("v1", "v2", "v3")):
        torch.manual_seed(i)
        registry.register_model(
            build_model("small_cnn", 2),
            ModelMetadata(model_id=MODEL, version=version, status=ModelStatus.VALIDATION,
                          architecture="small_cnn", training_config={"labels": ["a", "b"]}),
        )  # fmt: skip
    return DeploymentStore(ctx.db, registry, ctx.audit)


def cfg(version: str, **kw) -> DeploymentConfig:
    return DeploymentConfig(model_id=MODEL, version=version, deployment_id=DEP, **kw)


def status(version: str) -> ModelStatus:
    return get_model_registry().get_model(MODEL, version).status


def test_a_served_version_cannot_be_retired_failed_or_deleted(store) -> None:
    store.deploy(cfg("v1"))
    registry = get_model_registry()
    for target in ("retired", "failed", "testing"):
        with pytest.raises(ConflictError, match=f"served by deployment {DEP}; roll it back"):
            registry.update_status(MODEL, "v1", target)
    with pytest.raises(ConflictError, match=f"served by deployment {DEP}"):
        registry.delete_model(MODEL, "v1")
    assert status("v1") is ModelStatus.DEPLOYED
    assert invariants.check(store.db) == []


def test_a_canary_version_is_served_too(store) -> None:
    store.deploy(cfg("v1"))
    CanaryStore(store).start(cfg("v2", canary_deployment=True), canary_ref="wd:v2", weight=5.0,
                             now=0.0)  # fmt: skip
    assert status("v2") is ModelStatus.DEPLOYED
    with pytest.raises(ConflictError, match=f"served by deployment {DEP}"):
        get_model_registry().delete_model(MODEL, "v2")
    CanaryStore(store).abort(DEP, "not now")
    assert status("v2") is ModelStatus.RETIRED  # served no more
    get_model_registry().delete_model(MODEL, "v2")  # and now it may go
    assert invariants.check(store.db) == []


def test_deployed_by_hand_is_refused_and_names_the_command(store) -> None:
    with pytest.raises(ConflictError, match="nightscan deploy wd v2"):
        get_model_registry().update_status(MODEL, "v2", "deployed")
    assert status("v2") is ModelStatus.VALIDATION


def test_replacing_and_undeploying_keep_registry_and_deployments_in_step(store) -> None:
    store.deploy(cfg("v1"))
    store.deploy(cfg("v2"))
    assert (status("v1"), status("v2")) == (ModelStatus.RETIRED, ModelStatus.DEPLOYED)
    store.undeploy(DEP, "done")
    assert status("v2") is ModelStatus.RETIRED
    assert invariants.check(store.db) == []


def test_a_deleted_version_is_never_a_rollback_target(store) -> None:
    store.deploy(cfg("v1"))
    store.deploy(cfg("v2"))
    store.deploy(cfg("v3"))
    get_model_registry().delete_model(MODEL, "v2")  # RETIRED, served by nobody
    target = store.rollback_target(DEP, "v3")
    assert target is not None and target.version == "v1"


def test_an_older_inconsistent_database_is_reported_and_repaired(store) -> None:
    store.deploy(cfg("v1"))
    # What the old two-transaction code left after a crash: the deployment serves v2 while the
    # registry still says v1 is DEPLOYED and v2 RETIRED.
    with store.db.write() as session:
        row = session.get(DeploymentRow, DEP)
        row.version = "v2"
        session.add(row)
        v2 = session.exec(select(ModelVersionRow).where(ModelVersionRow.version == "v2")).one()
        v2.status = ModelStatus.RETIRED.value
        session.add(v2)
    found = invariants.check(store.db)
    assert {(v.model_ref, v.repairable) for v in found} == {("wd:v2", True), ("wd:v1", True)}

    repaired = invariants.check_and_repair(store)
    assert len(repaired) == 2
    assert (status("v1"), status("v2")) == (ModelStatus.RETIRED, ModelStatus.DEPLOYED)
    assert invariants.check(store.db) == []
    kinds = [e.kind for e in recent_events(kind="deployment.invariant")]
    assert kinds.count("deployment.invariant_repaired") == 2


def test_a_served_failed_version_is_reported_not_guessed(store) -> None:
    store.deploy(cfg("v1"))
    with store.db.write() as session:
        v1 = session.exec(select(ModelVersionRow).where(ModelVersionRow.version == "v1")).one()
        v1.status = ModelStatus.FAILED.value
        session.add(v1)
    (violation,) = invariants.check_and_repair(store)
    assert not violation.repairable and violation.deployments == (DEP,)
    assert status("v1") is ModelStatus.FAILED  # a person decides: roll back or undeploy
    (event,) = recent_events(kind="deployment.invariant_violated")
    assert event.severity == "critical" and "FAILED" in event.message
