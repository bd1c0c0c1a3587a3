"""``GET /quality/{deployment_id}``: model quality from ground truth for viewers, per version,
over a rolling window or all-time (the same report as ``nightscan quality --json``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from core.errors import NotFoundError
from core.server.identifiers import Id, QueryId
from core.server.resources import QualityReportView
from core.server.schemas import Problem
from core.server.security import Viewer

router = APIRouter(prefix="/quality", tags=["quality"])
# What parse_window accepts, bounded so that no window overflows a timedelta: 'all', or a
# positive number (up to 6 digits and 3 decimals) with a unit.
WINDOW_PATTERN = r"^(all|[1-9][0-9]{0,5}(\.[0-9]{1,3})?[smhdw]|0\.[0-9]{0,2}[1-9][smhdw])$"


@router.get(
    "/experiment/{experiment_id}",
    response_model=QualityReportView,
    responses={401: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
def experiment_quality(
    experiment_id: Id,
    request: Request,
    _who: Viewer,
    window: str = Query(
        "all", pattern=WINDOW_PATTERN, description="30m, 1h, 7d ... (at most 6 digits) or all."
    ),
) -> dict[str, Any]:
    """The same report per variant of an A/B experiment."""
    from core.quality.service import jsonable, parse_window, quality_for_experiment

    span = parse_window(window)
    return jsonable(quality_for_experiment(request.app.state.manager.db, experiment_id, span))


@router.get(
    "/{deployment_id}",
    response_model=QualityReportView,
    responses={401: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
)
def deployment_quality(
    deployment_id: Id,
    request: Request,
    _who: Viewer,
    version: QueryId = None,
    window: str = Query(
        "all", pattern=WINDOW_PATTERN, description="30m, 1h, 7d ... (at most 6 digits) or all."
    ),
) -> dict[str, Any]:
    """Confusion matrix, per-class precision/recall/F1 (Wilson and bootstrap intervals),
    macro/micro-F1, calibration bins and ECE, label coverage and delay, and the drift look."""
    from core.quality.service import jsonable, parse_window, quality_for_deployment

    span = parse_window(window)
    report = quality_for_deployment(request.app.state.manager.db, deployment_id, version, span)
    if version is not None and not report.groups:
        raise NotFoundError(f"no predictions of version {version!r} in {deployment_id!r}")
    return jsonable(report)
