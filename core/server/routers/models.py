"""Registered model versions: list, compare, show, lifecycle history, and the admin actions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from core.lifecycle import ModelStatus
from core.server.deps import Registry
from core.server.identifiers import (
    MAX_ID_LENGTH,
    MAX_ROW_ID,
    MODEL_REF,
    TEXT,
    BodyId,
    Id,
    QueryId,
    spelled_both_ways,
)
from core.server.problems import ACTION_ERRORS
from core.server.resources import (
    ComparisonView,
    Deleted,
    ModelView,
    StatusChangeView,
    VerifiedView,
)
from core.server.security import Admin, Operator, Viewer

router = APIRouter(prefix="/models", tags=["models"])


REF = {"max_length": 2 * MAX_ID_LENGTH + 1, "pattern": MODEL_REF}
StatusName = spelled_both_ways(ModelStatus)
StatusQuery = Annotated[StatusName | None, Query()]  # type: ignore[valid-type]


class StatusChange(BaseModel):
    status: StatusName  # type: ignore[valid-type]
    reason: str = Field("", max_length=500, pattern=TEXT)


class TagChange(BaseModel):
    add: list[BodyId] = Field(default_factory=list, max_length=100)
    remove: list[BodyId] = Field(default_factory=list, max_length=100)


@router.get("", response_model=list[ModelView])
def list_models(
    registry: Registry,
    model_id: QueryId = None,
    status: StatusQuery = None,
    tag: QueryId = None,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0, le=MAX_ROW_ID),
) -> list[dict[str, Any]]:
    """Registered versions, keyed by the seed's metadata field names."""
    models = registry.list_models(
        model_id=model_id, status=status, tag=tag, limit=limit, offset=offset
    )
    return [m.to_dict() for m in models]


@router.get("/compare", response_model=ComparisonView)
def compare_models(
    registry: Registry,
    a: str = Query(..., description="MODEL_ID:VERSION (the baseline).", **REF),
    b: str = Query(..., description="MODEL_ID:VERSION (the candidate).", **REF),
) -> dict[str, Any]:
    """Metric differences of b over a, direction-aware (the seed's comparison)."""
    from core.model_metadata import parse_model_ref

    return registry.compare_models(parse_model_ref(a), parse_model_ref(b))


@router.get("/{model_id}/{version}", response_model=ModelView)
def show_model(model_id: Id, version: Id, registry: Registry) -> dict[str, Any]:
    return registry.get_model(model_id, version).to_dict()


@router.get("/{model_id}/{version}/history", response_model=list[StatusChangeView])
def model_status_history(model_id: Id, version: Id, registry: Registry) -> list[dict[str, Any]]:
    """Lifecycle changes of one version, oldest first."""
    registry.get_model(model_id, version)  # 404 for an unknown version
    return [c.to_dict() for c in registry.status_history(model_id, version)]


@router.post(
    "/{model_id}/{version}/status",
    response_model=ModelView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def change_model_status(
    model_id: Id, version: Id, body: StatusChange, who: Admin, registry: Registry
) -> dict[str, Any]:
    """Lifecycle transition (admin)."""
    meta = registry.update_status(
        model_id, version, body.status, reason=body.reason, actor=who.actor
    )
    return meta.to_dict()


@router.post(
    "/{model_id}/{version}/tags",
    response_model=ModelView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def change_model_tags(
    model_id: Id, version: Id, body: TagChange, who: Operator, registry: Registry
) -> dict[str, Any]:
    """Add and remove tags (operator)."""
    meta = registry.set_tags(model_id, version, add=body.add, remove=body.remove, actor=who.actor)
    return meta.to_dict()


@router.delete(
    "/{model_id}/{version}",
    response_model=Deleted,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def delete_model(model_id: Id, version: Id, who: Admin, registry: Registry) -> dict[str, str]:
    """Delete a version that is not DEPLOYED (admin)."""
    registry.delete_model(model_id, version, actor=who.actor)
    return {"deleted": f"{model_id}:{version}"}


@router.post(
    "/{model_id}/{version}/verify",
    response_model=VerifiedView,
    responses=ACTION_ERRORS,
    tags=["actions"],
)
def verify_model(model_id: Id, version: Id, _who: Viewer, registry: Registry) -> dict[str, Any]:
    """Re-hash the stored weights against the registered checksum (500 on a mismatch)."""
    return registry.verify_weights(model_id, version)
