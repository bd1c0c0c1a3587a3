"""SQLModel tables for A/B experiments. The schema is owned by migrations 0003 and 0009 (per-epoch
statistics); keep them in step.

Raw results are append-only and unique per (experiment, request, metric), which makes recording
idempotent. ``experiment_metric_stats`` (per variant), ``experiment_epoch_metric_stats`` (per
variant and allocation epoch) and ``experiment_unit_count`` hold the sufficient statistics that
analysis reads; they are updated in the same transaction as the raw rows and only from rows that
were actually inserted, so they never drift from the raw data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for raw results.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def _experiment_fk(primary_key: bool = False) -> Column:
    return Column(
        String(200),
        ForeignKey("experiment.experiment_id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


class ExperimentRow(SQLModel, table=True):
    __tablename__ = "experiment"

    experiment_id: str = Field(primary_key=True, max_length=200)
    name: str = ""
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=20, index=True)
    allocation_version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = ""
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    stop_reason: str = ""
    stopped_by: str = ""
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentStatusChangeRow(SQLModel, table=True):
    """Every lifecycle transition with who and why."""

    __tablename__ = "experiment_status_change"

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: str = Field(sa_column=_experiment_fk())
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = ""
    reason: str = ""


class ExperimentAllocationRow(SQLModel, table=True):
    """Allocation history: version 1 is the configured split; every change adds a version."""

    __tablename__ = "experiment_allocation"
    __table_args__ = (
        UniqueConstraint("experiment_id", "version", name="uq_experiment_allocation_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: str = Field(sa_column=_experiment_fk())
    version: int
    allocation: dict[str, float] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(max_length=20)  # initial | manual | bandit
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = ""
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ExperimentUnitRow(SQLModel, table=True):
    """A request's variant, fixed by its first committed result, and the allocation then."""

    __tablename__ = "experiment_unit"

    experiment_id: str = Field(sa_column=_experiment_fk(primary_key=True))
    request_id: str = Field(primary_key=True, max_length=300)
    variant: str = Field(max_length=100)
    allocation_version: int
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentUnitCountRow(SQLModel, table=True):
    """Units per variant and allocation epoch: what the sample-ratio-mismatch check needs."""

    __tablename__ = "experiment_unit_count"

    experiment_id: str = Field(sa_column=_experiment_fk(primary_key=True))
    variant: str = Field(primary_key=True, max_length=100)
    allocation_version: int = Field(primary_key=True)
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class ExperimentResultRow(SQLModel, table=True):
    """One metric value of one request; the unique key makes a re-sent result a no-op."""

    __tablename__ = "experiment_result"
    __table_args__ = (
        UniqueConstraint("experiment_id", "request_id", "metric", name="uq_experiment_result"),
        # Export streams one experiment's results in insertion order.
        Index("ix_experiment_result_export", "experiment_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigIntId, primary_key=True))
    experiment_id: str = Field(sa_column=_experiment_fk())
    request_id: str = Field(max_length=300)
    metric: str = Field(max_length=100)
    variant: str = Field(max_length=100)
    value: float = Field(sa_column=Column(Float, nullable=False))
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentMetricStatsRow(SQLModel, table=True):
    """n, sum and sum of squares per variant and metric (sum = successes for binary metrics)."""

    __tablename__ = "experiment_metric_stats"

    experiment_id: str = Field(sa_column=_experiment_fk(primary_key=True))
    variant: str = Field(primary_key=True, max_length=100)
    metric: str = Field(primary_key=True, max_length=100)
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sum: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    sum_sq: float = Field(default=0.0, sa_column=Column(Float, nullable=False))


class ExperimentEpochMetricStatsRow(SQLModel, table=True):
    """The same sums per allocation epoch (the version in force when the unit was first seen),
    so analysis can compare arms within an epoch. Owned by migration 0009."""

    __tablename__ = "experiment_epoch_metric_stats"

    experiment_id: str = Field(sa_column=_experiment_fk(primary_key=True))
    variant: str = Field(primary_key=True, max_length=100)
    metric: str = Field(primary_key=True, max_length=100)
    allocation_version: int = Field(primary_key=True)
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    sum: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
    sum_sq: float = Field(default=0.0, sa_column=Column(Float, nullable=False))
