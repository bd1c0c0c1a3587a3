"""Mutating routes. Each needs a bearer token of a sufficient role, and each lands in the audit
log with the token's name as the actor."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from core.server.security import Admin, Operator, Viewer

router = APIRouter(tags=["actions"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {}, 403: {}, 404: {}, 409: {}, 422: {}}


class Reason(BaseModel):
    reason: str = Field("", max_length=500)


class StatusChange(BaseModel):
    status: str
    reason: str = Field("", max_length=500)


@router.post("/models/{model_id}/{version}/status", responses=ERRORS)
def change_model_status(
    model_id: str, version: str, body: StatusChange, who: Admin
) -> dict[str, Any]:
    """Lifecycle transition (admin)."""
    from core.registry import get_model_registry

    meta = get_model_registry().update_status(
        model_id, version, body.status, reason=body.reason, actor=who.actor
    )
    return meta.to_dict()


class TagChange(BaseModel):
    add: list[str] = Field(default_factory=list, max_length=100)
    remove: list[str] = Field(default_factory=list, max_length=100)


@router.post("/models/{model_id}/{version}/tags", responses=ERRORS)
def change_model_tags(
    model_id: str, version: str, body: TagChange, who: Operator
) -> dict[str, Any]:
    """Add and remove tags (operator)."""
    from core.registry import get_model_registry

    meta = get_model_registry().set_tags(
        model_id, version, add=body.add, remove=body.remove, actor=who.actor
    )
    return meta.to_dict()


@router.delete("/models/{model_id}/{version}", responses=ERRORS)
def delete_model(model_id: str, version: str, who: Admin) -> dict[str, str]:
    """Delete a version that is not DEPLOYED (admin)."""
    from core.registry import get_model_registry

    get_model_registry().delete_model(model_id, version, actor=who.actor)
    return {"deleted": f"{model_id}:{version}"}


@router.post("/models/{model_id}/{version}/verify", responses=ERRORS)
def verify_model(model_id: str, version: str, _who: Viewer) -> dict[str, Any]:
    """Re-hash the stored weights against the registered checksum (500 on a mismatch)."""
    from core.registry import get_model_registry

    return get_model_registry().verify_weights(model_id, version)


@router.post("/deployments", status_code=201, responses=ERRORS)
def deploy(request: Request, body: dict[str, Any], who: Admin) -> dict[str, Any]:
    """Deploy a version (admin). The body holds DeploymentConfig fields."""
    from core.deployments import DeploymentConfig

    config = DeploymentConfig.from_dict(body)
    request.app.state.manager.deploy_model(config, actor=who.actor)
    return request.app.state.manager.get_status(config.deployment_id)


@router.delete("/deployments/{deployment_id}", responses=ERRORS)
def undeploy(
    request: Request,
    deployment_id: str,
    who: Admin,
    reason: str = Query("undeployed via HTTP", max_length=500),
) -> dict[str, Any]:
    """Stop serving (admin)."""
    request.app.state.manager.undeploy(deployment_id, reason=reason, actor=who.actor)
    return request.app.state.manager.get_deployment(deployment_id).to_dict()


@router.post("/deployments/{deployment_id}/rollback", responses=ERRORS)
def rollback(
    request: Request,
    deployment_id: str,
    who: Operator,
    body: Reason | None = None,
) -> dict[str, Any]:
    """Back to the previous healthy version (operator)."""
    reason = (body.reason if body else "") or "manual rollback"
    info = request.app.state.manager.rollback_deployment(
        deployment_id, reason=reason, actor=who.actor
    )
    return info.to_dict()


@router.post("/deployments/{deployment_id}/health", responses=ERRORS)
def probe_health(request: Request, deployment_id: str, _who: Operator) -> dict[str, Any]:
    """Probe the deployment with a real inference now (operator)."""
    request.app.state.manager.get_deployment(deployment_id)  # 404 for an unknown id
    return request.app.state.manager.health(deployment_id)


@router.post("/experiments", status_code=201, responses=ERRORS)
def create_experiment(body: dict[str, Any], who: Operator) -> dict[str, Any]:
    """Create an experiment (operator). The body holds ExperimentConfig fields."""
    from core.experiments import ExperimentConfig, get_ab_test_manager

    ab = get_ab_test_manager()
    ab.create_experiment(ExperimentConfig.from_dict(body), actor=who.actor)
    return ab.get_experiment(body.get("experiment_id", "")).to_dict()


@router.post("/experiments/{experiment_id}/start", responses=ERRORS)
def start_experiment(experiment_id: str, who: Operator) -> dict[str, Any]:
    from core.experiments import get_ab_test_manager

    return get_ab_test_manager().start_experiment(experiment_id, actor=who.actor).to_dict()


@router.post("/experiments/{experiment_id}/stop", responses=ERRORS)
def stop_experiment(
    experiment_id: str, who: Operator, body: Reason | None = None
) -> dict[str, Any]:
    from core.experiments import get_ab_test_manager

    reason = (body.reason if body else "") or "stopped via HTTP"
    return get_ab_test_manager().stop_experiment(experiment_id, reason, actor=who.actor).to_dict()


class AllocationRequest(BaseModel):
    allocation: dict[str, float]
    reason: str = Field("manual reallocation via HTTP", max_length=500)


@router.post("/experiments/{experiment_id}/allocation", responses=ERRORS)
def set_allocation(experiment_id: str, body: AllocationRequest, who: Operator) -> dict[str, Any]:
    """A new traffic split, percentages per variant summing to 100 (operator)."""
    from core.experiments import get_ab_test_manager

    change = get_ab_test_manager().set_allocation(
        experiment_id, body.allocation, body.reason, actor=who.actor
    )
    return change.to_dict()


@router.get("/deployments/{deployment_id}/canary", tags=["views"], responses=ERRORS)
def canary_status(request: Request, deployment_id: str) -> dict[str, Any]:
    """The deployment's latest canary: state, weight, counts and the judge's recent verdicts."""
    return request.app.state.manager.canaries.status(deployment_id)


@router.post("/deployments/{deployment_id}/canary/{action}", responses=ERRORS)
def canary_action(
    request: Request,
    deployment_id: str,
    action: Literal["promote", "abort", "pause", "resume"],
    who: Operator,
    body: Reason | None = None,
) -> dict[str, Any]:
    """Promote, abort, pause or resume a canary (operator)."""
    canaries = request.app.state.manager.canaries
    reason = body.reason if body and body.reason else f"manual {action} via HTTP"
    if action in ("promote", "abort"):
        return getattr(canaries, action)(deployment_id, reason, actor=who.actor)
    return getattr(canaries, action)(deployment_id, actor=who.actor)
