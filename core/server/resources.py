"""Response models of the resource views: the fields clients rely on, typed, so that
``/openapi.json`` says what a body holds and the contract check can hold the server to it.
Each allows extra keys: a view may grow a field without breaking a client or the contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelView(_View):
    """One registered version (``ModelMetadata.to_dict``, the seed's field names)."""

    model_id: str
    version: str
    name: str
    description: str
    created_at: str
    status: str
    framework: str
    architecture: str
    dataset_version: str
    training_config: dict[str, Any]
    metrics: dict[str, float]
    file_size_bytes: int
    checksum: str
    tags: list[str]


class StatusChangeView(_View):
    model_id: str
    version: str
    from_status: str | None
    to_status: str
    at: str
    actor: str
    reason: str


class DeploymentView(_View):
    """``DeploymentInfo.to_dict``; the list adds ``metrics``, the status view much more."""

    deployment_id: str
    model_id: str
    version: str
    model_version: str
    environment: str
    status: str
    health: str
    traffic_percentage: float
    config: dict[str, Any]
    generation: int
    reason: str
    created_at: str
    updated_at: str
    metrics: dict[str, Any] | None = None


class EventView(_View):
    id: int
    at: str
    kind: str
    severity: str
    source: str
    message: str
    data: dict[str, Any]


class AuditEntryView(_View):
    id: int
    at: str
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str


class Deleted(BaseModel):
    deleted: str


class Caller(BaseModel):
    name: str
    role: str
