"""A/B experiments: list, status, analysis, allocation history; create, start, stop, reallocate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.experiments.models import ExperimentStatus
from core.server.config_bodies import ExperimentRequest
from core.server.deps import Experiments
from core.server.identifiers import TEXT, BodyId, Id, spelled_both_ways
from core.server.problems import ACTION_ERRORS, AUTH_ERRORS
from core.server.resources import (
    AllocationChangeView,
    ExperimentAnalysisView,
    ExperimentStatusView,
    ExperimentView,
)
from core.server.routers.deployments import Reason
from core.server.security import Operator, Viewer

router = APIRouter(prefix="/experiments", tags=["experiments"])
ExperimentStatusName = spelled_both_ways(ExperimentStatus)
ExperimentStatusQuery = Annotated[ExperimentStatusName | None, Query()]  # type: ignore[valid-type]


class AllocationRequest(BaseModel):
    allocation: dict[BodyId, float] = Field(max_length=100)
    reason: str = Field("manual reallocation via HTTP", max_length=500, pattern=TEXT)


@router.get("", response_model=list[ExperimentView])
def list_experiments(ab: Experiments, status: ExperimentStatusQuery = None) -> list[dict[str, Any]]:
    return [e.to_dict() for e in ab.list_experiments(status)]


@router.get("/{experiment_id}", response_model=ExperimentStatusView)
def experiment_status(experiment_id: Id, ab: Experiments) -> dict[str, Any]:
    """Lifecycle, units and result counts per variant."""
    return ab.get_experiment_status(experiment_id)


@router.get(
    "/{experiment_id}/analysis", response_model=ExperimentAnalysisView, responses=AUTH_ERRORS
)
def experiment_analysis(experiment_id: Id, _who: Viewer, ab: Experiments) -> dict[str, Any]:
    """The full statistical analysis (the seed's shape); needs a token (viewer or above)."""
    return ab.analyze_experiment(experiment_id)


@router.get("/{experiment_id}/allocations", response_model=list[AllocationChangeView])
def allocation_history(experiment_id: Id, ab: Experiments) -> list[dict[str, Any]]:
    """Every traffic split the experiment has had (configured, manual, bandit), oldest first."""
    return [c.to_dict() for c in ab.allocation_history(experiment_id)]


@router.post(
    "", status_code=201, response_model=ExperimentView, responses=ACTION_ERRORS, tags=["actions"]
)
def create_experiment(body: ExperimentRequest, who: Operator, ab: Experiments) -> dict[str, Any]:
    """Create an experiment (operator). The body holds ExperimentConfig fields."""
    ab.create_experiment(body.to_config(), actor=who.actor)
    return ab.get_experiment(body.experiment_id).to_dict()


@router.post(
    "/{experiment_id}/start",
    response_model=ExperimentView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def start_experiment(experiment_id: Id, who: Operator, ab: Experiments) -> dict[str, Any]:
    return ab.start_experiment(experiment_id, actor=who.actor).to_dict()


@router.post(
    "/{experiment_id}/stop",
    response_model=ExperimentView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def stop_experiment(
    experiment_id: Id, who: Operator, ab: Experiments, body: Reason | None = None
) -> dict[str, Any]:
    reason = (body.reason if body else "") or "stopped via HTTP"
    return ab.stop_experiment(experiment_id, reason, actor=who.actor).to_dict()


@router.post(
    "/{experiment_id}/allocation",
    response_model=AllocationChangeView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def set_allocation(
    experiment_id: Id, body: AllocationRequest, who: Operator, ab: Experiments
) -> dict[str, Any]:
    """A new traffic split, percentages per variant summing to 100 (operator)."""
    change = ab.set_allocation(experiment_id, body.allocation, body.reason, actor=who.actor)
    return change.to_dict()
