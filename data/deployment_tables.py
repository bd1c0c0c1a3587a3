"""Deployments: the desired serving state (every server process reconciles to it), the revision
history that rollback walks back through, and performance snapshots for other processes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow


class DeploymentRow(SQLModel, table=True):
    __tablename__ = "deployment"

    deployment_id: str = Field(primary_key=True, max_length=200)
    model_id: str = Field(max_length=200)
    version: str = Field(max_length=100)
    environment: str = Field(max_length=100)
    # running: serving; stopped: undeployed; failed: never became healthy.
    status: str = Field(max_length=20, index=True)
    health: str = Field(default="unknown", max_length=20)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Bumped on every change, so a server reconciles only what moved.
    generation: int = 1
    reason: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DeploymentRevisionRow(SQLModel, table=True):
    """Every version a deployment served or tried to serve, in order."""

    __tablename__ = "deployment_revision"
    __table_args__ = (Index("ix_deployment_revision_dep", "deployment_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=200)
    model_id: str = Field(max_length=200)
    version: str = Field(max_length=100)
    # active: serving now; replaced: served and was healthy; failed; rolled_back.
    status: str = Field(max_length=20)
    reason: str = ""
    actor: str = ""
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PerformanceSnapshotRow(SQLModel, table=True):
    """The tracker's rolling numbers and recent per-second samples, written every few seconds."""

    __tablename__ = "performance_snapshot"
    __table_args__ = (Index("ix_perf_snapshot_dep_at", "deployment_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=200)
    model_version: str = Field(max_length=300)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    samples: list[Any] = Field(default_factory=list, sa_column=Column(JSON))


class PredictionRow(SQLModel, table=True):
    """What a served request predicted, so ground truth that arrives later (at any server
    process, after a restart) can be joined to it; ``correct`` is set once, by the first
    feedback, which makes feedback idempotent across processes. Pruned after a retention."""

    __tablename__ = "prediction"
    __table_args__ = (Index("ix_prediction_deployment_at", "deployment_id", "at"),)

    request_id: str = Field(primary_key=True, max_length=200)
    deployment_id: str = Field(max_length=200)
    model_ref: str = Field(max_length=300)
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    predicted_class: str = Field(max_length=200)
    experiment_id: str | None = Field(default=None, max_length=200)
    variant: str | None = Field(default=None, max_length=100)
    canary_id: int | None = None
    canary_arm: str | None = Field(default=None, max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    correct: bool | None = None
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # For quality (core/quality): the top-class probability, its calibration bin (0..9), the
    # label the first feedback gave and how long after the prediction it came.
    confidence: float | None = None
    confidence_bin: int | None = None
    true_label: str | None = Field(default=None, max_length=200)
    label_delay_s: float | None = None
