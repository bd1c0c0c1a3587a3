"""Deployments: list, status, live metrics and history; deploy, undeploy, rollback, probe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.server.config_bodies import DeploymentRequest
from core.server.deps import Manager
from core.server.identifiers import TEXT, Id
from core.server.problems import ACTION_ERRORS
from core.server.resources import (
    DeploymentHistoryView,
    DeploymentMetricsView,
    DeploymentView,
    HealthProbeView,
)
from core.server.security import Admin, Operator

router = APIRouter(prefix="/deployments", tags=["deployments"])


class Reason(BaseModel):
    reason: str = Field("", max_length=500, pattern=TEXT)


@router.get("", response_model=list[DeploymentView])
def list_deployments(mgr: Manager, include_stopped: bool = Query(False)) -> list[dict[str, Any]]:
    out = []
    for info in mgr.list_deployments(include_stopped=include_stopped):
        item = info.to_dict()
        metrics = mgr.performance_tracker.get_current_metrics(info.deployment_id)
        item["metrics"] = metrics.to_dict() if metrics else None
        out.append(item)
    return out


@router.get("/{deployment_id}", response_model=DeploymentView)
def deployment_status(deployment_id: Id, mgr: Manager) -> dict[str, Any]:
    """Configuration, revisions and the live metrics of one deployment."""
    return mgr.get_status(deployment_id)


@router.get("/{deployment_id}/metrics", response_model=DeploymentMetricsView)
def deployment_metrics(deployment_id: Id, mgr: Manager) -> dict[str, Any]:
    mgr.get_deployment(deployment_id)  # 404 for an unknown id
    """The rolling-window numbers; ``processes``: each serving process's last snapshot (the
    workers of ``serve --workers N``, other hosts), keyed ``host:pid``."""
    tracker = mgr.performance_tracker
    metrics = tracker.get_current_metrics(deployment_id)
    processes = {key: m.to_dict() for key, m in tracker.by_process(deployment_id).items()}
    return {
        "deployment_id": deployment_id,
        "metrics": metrics.to_dict() if metrics else None,
        "processes": processes,
    }


@router.get("/{deployment_id}/history", response_model=DeploymentHistoryView)
def deployment_history(
    deployment_id: Id, mgr: Manager, seconds: int = Query(900, ge=1, le=900)
) -> dict[str, Any]:
    """Per-second requests, errors and latency for charts."""
    mgr.get_deployment(deployment_id)
    samples = mgr.performance_tracker.history(deployment_id, seconds)
    return {"deployment_id": deployment_id, "samples": [s.__dict__ for s in samples]}


@router.post(
    "", status_code=201, response_model=DeploymentView, responses=ACTION_ERRORS, tags=["actions"]
)
def deploy(body: DeploymentRequest, who: Admin, mgr: Manager) -> dict[str, Any]:
    """Deploy a version (admin). The body holds DeploymentConfig fields."""
    config = body.to_config()
    mgr.deploy_model(config, actor=who.actor)
    return mgr.get_status(config.deployment_id)


@router.delete(
    "/{deployment_id}", response_model=DeploymentView, responses=ACTION_ERRORS, tags=["actions"]
)
def undeploy(
    deployment_id: Id,
    who: Admin,
    mgr: Manager,
    reason: str = Query("undeployed via HTTP", max_length=500, pattern=TEXT),
) -> dict[str, Any]:
    """Stop serving (admin)."""
    mgr.undeploy(deployment_id, reason=reason, actor=who.actor)
    return mgr.get_deployment(deployment_id).to_dict()


@router.post(
    "/{deployment_id}/rollback",
    response_model=DeploymentView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def rollback(
    deployment_id: Id, who: Operator, mgr: Manager, body: Reason | None = None
) -> dict[str, Any]:
    """Back to the previous healthy version (operator)."""
    reason = (body.reason if body else "") or "manual rollback"
    return mgr.rollback_deployment(deployment_id, reason=reason, actor=who.actor).to_dict()


@router.post(
    "/{deployment_id}/health",
    response_model=HealthProbeView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def probe_health(deployment_id: Id, _who: Operator, mgr: Manager) -> dict[str, Any]:
    """Probe the deployment with a real inference now (operator)."""
    mgr.get_deployment(deployment_id)  # 404 for an unknown id
    return mgr.health(deployment_id)
