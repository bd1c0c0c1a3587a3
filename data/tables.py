"""SQLModel tables for the registry and the audit log. The schema itself is owned by the Alembic
migrations in ``data/migrations``; these classes must match them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow


class ModelVersionRow(SQLModel, table=True):
    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("model_id", "version", name="uq_model_version"),
        Index("ix_model_version_order", "model_id", "version_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(max_length=200)
    version: str = Field(max_length=100)
    # Zero-padded semantic version, so ORDER BY sorts v2.10.0 after v2.9.0 and pages in SQL.
    version_key: str = Field(max_length=200)
    name: str = ""
    description: str = ""
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = Field(max_length=20, index=True)
    framework: str = Field(default="pytorch", max_length=50, index=True)
    architecture: str = ""
    dataset_version: str = ""
    training_config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    file_size_bytes: int = 0
    checksum: str = Field(max_length=64)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class ModelTagRow(SQLModel, table=True):
    """One row per tag, so ``--tag`` filters in SQL on every backend."""

    __tablename__ = "model_tag"

    model_version_pk: int = Field(
        sa_column=Column(
            Integer, ForeignKey("model_version.id", ondelete="CASCADE"), primary_key=True
        )
    )
    tag: str = Field(primary_key=True, max_length=100, index=True)


class StatusChangeRow(SQLModel, table=True):
    """Every lifecycle transition, registration included; answers "what was DEPLOYED at T"."""

    __tablename__ = "status_change"
    __table_args__ = (Index("ix_status_change_model", "model_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: str = Field(max_length=200)
    version: str = Field(max_length=100)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = ""
    reason: str = ""


class AuditRow(SQLModel, table=True):
    """Append-only (triggers refuse UPDATE and DELETE): who did what, when, before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = ""
    action: str = Field(max_length=100)
    entity_type: str = Field(max_length=50)
    entity_id: str = Field(max_length=300)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    detail: str = ""


class EventRow(SQLModel, table=True):
    """Automated actions, alerts and milestones, in the order they happened."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    kind: str = Field(max_length=100, index=True)
    severity: str = Field(default="info", max_length=20)
    source: str = Field(default="", max_length=300)
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
