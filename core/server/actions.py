"""Mutating routes. Each needs a bearer token of a sufficient role, and each lands in the audit
log with the token's name as the actor."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from core.server.security import Admin, Operator

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


@router.post("/deployments", status_code=201, responses=ERRORS)
def deploy(request: Request, body: dict[str, Any], who: Admin) -> dict[str, Any]:
    """Deploy a version (admin). The body holds DeploymentConfig fields."""
    from core.deployments import DeploymentConfig

    config = DeploymentConfig.from_dict(body)
    request.app.state.manager.deploy_model(config, actor=who.actor)
    return request.app.state.manager.get_status(config.deployment_id)


@router.delete("/deployments/{deployment_id}", responses=ERRORS)
def undeploy(request: Request, deployment_id: str, who: Admin) -> dict[str, Any]:
    """Stop serving (admin)."""
    request.app.state.manager.undeploy(deployment_id, reason="via HTTP", actor=who.actor)
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
