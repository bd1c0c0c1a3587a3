"""Liveness, readiness and Prometheus metrics of this serving process."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from core.server.deps import Manager
from core.server.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=True, response_class=Response)
def metrics(mgr: Manager) -> Response:
    """Prometheus text format: request counters and latency/batch histograms, plus the
    gauges the seed's alert rules use (model_inference_latency_p95, model_error_rate,
    ab_test_confidence)."""
    body, content_type = mgr.metrics.render()
    return Response(body, media_type=content_type)


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
def ready(mgr: Manager) -> Any:
    """Readiness: at least one deployment is loaded here and healthy. Each deployment says
    the generation it reconciled to and its traffic split (version -> percent)."""
    served = []
    for dep in mgr.served_deployments().values():
        served.append(
            {
                "deployment_id": dep.config.deployment_id,
                "model_version": dep.model_ref,
                "healthy": dep.healthy,
                # What this process serves, to compare across processes and hosts: every one
                # that reconciled to the database's desired state shows its generation.
                "generation": dep.generation,
                "traffic": dep.traffic_split(),
            }
        )
    if any(d["healthy"] for d in served):
        return Health(status="ready", deployments=served)
    detail = "no deployment is loaded" if not served else "no deployment is healthy"
    return JSONResponse(
        Health(status="not ready", detail=detail, deployments=served).model_dump(),
        status_code=503,
    )
