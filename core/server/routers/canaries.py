"""Canary rollouts: the running ones, one deployment's latest, and the manual actions."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from core.server.deps import Manager
from core.server.identifiers import Id
from core.server.problems import ACTION_ERRORS
from core.server.resources import CanarySummaryView, CanaryView
from core.server.routers.deployments import Reason
from core.server.security import Operator

router = APIRouter(tags=["canaries"])


@router.get("/canaries", response_model=list[CanaryView])
def list_canaries(mgr: Manager, include_ended: bool = Query(False)) -> list[dict[str, Any]]:
    """Running (and paused) canaries: deployment, stable and canary versions, weight, state."""
    return mgr.canaries.list_canaries(include_ended=include_ended)


@router.get(
    "/deployments/{deployment_id}/canary", response_model=CanaryView, responses=ACTION_ERRORS
)
def canary_status(
    deployment_id: Id, mgr: Manager, checks: int = Query(10, ge=0, le=100)
) -> dict[str, Any]:
    """The deployment's latest canary: state, weight, counts and the judge's last ``checks``
    verdicts."""
    return mgr.canaries.status(deployment_id, checks=checks)


@router.post(
    "/deployments/{deployment_id}/canary/{action}",
    response_model=CanarySummaryView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def canary_action(
    deployment_id: Id,
    action: Literal["promote", "abort", "pause", "resume"],
    who: Operator,
    mgr: Manager,
    body: Reason | None = None,
) -> dict[str, Any]:
    """Promote, abort, pause or resume a canary (operator)."""
    canaries = mgr.canaries
    reason = body.reason if body and body.reason else f"manual {action} via HTTP"
    if action in ("promote", "abort"):
        return getattr(canaries, action)(deployment_id, reason, actor=who.actor)
    return getattr(canaries, action)(deployment_id, actor=who.actor)
