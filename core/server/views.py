"""Read-only JSON views of models, deployments (with live metrics) and experiments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from core.registry import get_model_registry
from core.server.security import Viewer

router = APIRouter()


@router.get("/models", tags=["views"])
def list_models(
    model_id: str | None = Query(None),
    status: str | None = Query(None),
    tag: str | None = Query(None),
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Registered versions, keyed by the seed's metadata field names."""
    models = get_model_registry().list_models(
        model_id=model_id, status=status, tag=tag, limit=limit, offset=offset
    )
    return [m.to_dict() for m in models]


@router.get("/models/compare", tags=["views"])
def compare_models(
    a: str = Query(..., description="MODEL_ID:VERSION (the baseline)."),
    b: str = Query(..., description="MODEL_ID:VERSION (the candidate)."),
) -> dict[str, Any]:
    """Metric differences of b over a, direction-aware (the seed's comparison)."""
    from core.model_metadata import parse_model_ref

    return get_model_registry().compare_models(parse_model_ref(a), parse_model_ref(b))


@router.get("/models/{model_id}/{version}", tags=["views"])
def show_model(model_id: str, version: str) -> dict[str, Any]:
    return get_model_registry().get_model(model_id, version).to_dict()


@router.get("/models/{model_id}/{version}/history", tags=["views"])
def model_status_history(model_id: str, version: str) -> list[dict[str, Any]]:
    """Lifecycle changes of one version, oldest first."""
    registry = get_model_registry()
    registry.get_model(model_id, version)  # 404 for an unknown version
    return [c.to_dict() for c in registry.status_history(model_id, version)]


@router.get("/deployments", tags=["views"])
def list_deployments(
    request: Request, include_stopped: bool = Query(False)
) -> list[dict[str, Any]]:
    mgr = request.app.state.manager
    out = []
    for info in mgr.list_deployments(include_stopped=include_stopped):
        item = info.to_dict()
        metrics = mgr.performance_tracker.get_current_metrics(info.deployment_id)
        item["metrics"] = metrics.to_dict() if metrics else None
        out.append(item)
    return out


@router.get("/deployments/{deployment_id}", tags=["views"])
def deployment_status(request: Request, deployment_id: str) -> dict[str, Any]:
    """Configuration, revisions and the live metrics of one deployment."""
    return request.app.state.manager.get_status(deployment_id)


@router.get("/deployments/{deployment_id}/metrics", tags=["views"])
def deployment_metrics(request: Request, deployment_id: str) -> dict[str, Any]:
    mgr = request.app.state.manager
    mgr.get_deployment(deployment_id)  # 404 for an unknown id
    metrics = mgr.performance_tracker.get_current_metrics(deployment_id)
    return {"deployment_id": deployment_id, "metrics": metrics.to_dict() if metrics else None}


@router.get("/deployments/{deployment_id}/history", tags=["views"])
def deployment_history(
    request: Request, deployment_id: str, seconds: int = Query(900, ge=1, le=900)
) -> dict[str, Any]:
    """Per-second requests, errors and latency for charts."""
    mgr = request.app.state.manager
    mgr.get_deployment(deployment_id)
    samples = mgr.performance_tracker.history(deployment_id, seconds)
    return {"deployment_id": deployment_id, "samples": [s.__dict__ for s in samples]}


@router.get("/canaries", tags=["views"])
def list_canaries(request: Request, include_ended: bool = Query(False)) -> list[dict[str, Any]]:
    """Running (and paused) canaries: deployment, stable and canary versions, weight, state."""
    return request.app.state.manager.canaries.list_canaries(include_ended=include_ended)


@router.get("/experiments", tags=["views"])
def list_experiments(status: str | None = Query(None)) -> list[dict[str, Any]]:
    from core.experiments import get_ab_test_manager

    return [e.to_dict() for e in get_ab_test_manager().list_experiments(status)]


@router.get("/experiments/{experiment_id}", tags=["views"])
def experiment_status(experiment_id: str) -> dict[str, Any]:
    """Lifecycle, units and result counts per variant."""
    from core.experiments import get_ab_test_manager

    return get_ab_test_manager().get_experiment_status(experiment_id)


@router.get("/experiments/{experiment_id}/analysis", tags=["views"])
def experiment_analysis(experiment_id: str, _who: Viewer) -> dict[str, Any]:
    """The full statistical analysis (the seed's shape); needs a token (viewer or above)."""
    from core.experiments import get_ab_test_manager

    return get_ab_test_manager().analyze_experiment(experiment_id)


@router.get("/experiments/{experiment_id}/allocations", tags=["views"])
def allocation_history(experiment_id: str) -> list[dict[str, Any]]:
    """Every traffic split the experiment has had (configured, manual, bandit), oldest first."""
    from core.experiments import get_ab_test_manager

    return [c.to_dict() for c in get_ab_test_manager().allocation_history(experiment_id)]


@router.get("/events", tags=["views"])
def events(
    after_id: int | None = Query(None, ge=0, description="Only events newer than this id."),
    kind: str | None = Query(None, max_length=100, description="Kind prefix, e.g. alert."),
    source: str | None = Query(None, max_length=300),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """The event stream (alerts, automated actions, milestones): newest first, or oldest first
    after ``after_id`` so that a follower asks only for what it has not seen."""
    from core.events import recent_events

    found = recent_events(after_id=after_id, kind=kind, source=source, limit=limit)
    return [e.to_dict() for e in found]


@router.get("/audit", tags=["views"])
def audit(
    _who: Viewer,
    after_id: int | None = Query(None, ge=0, description="Only entries newer than this id."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """The audit log (who changed what); newest first, or oldest first after ``after_id``.
    Needs a token (viewer or above): it names people and tokens."""
    from core.context import get_context

    return [e.to_dict() for e in get_context().audit.entries(after_id=after_id, limit=limit)]


@router.get("/whoami", tags=["views"])
def whoami(who: Viewer) -> dict[str, str]:
    """The calling token's name and role (what an attached console may do)."""
    return {"name": who.name, "role": who.role}
