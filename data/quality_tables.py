"""Sufficient counts for model quality, kept per hour so a window or all-time is a small SUM.

Every prediction adds one to a ``quality_confusion_count`` cell (predicted class, true label ''
until feedback) and to a ``quality_confidence_count`` cell (calibration bin, outcome '' until
feedback); the first feedback moves it from the unlabelled cell to the labelled one in the same
transaction that sets ``prediction.correct``. Nullable dimensions are stored as '' and 0 because
a unique key treats NULLs as distinct on PostgreSQL, which would defeat the upsert.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime

DIMENSIONS = (
    "deployment_id",
    "model_ref",
    "experiment_id",
    "variant",
    "canary_id",
    "canary_arm",
    "hour",
)


class QualityConfusionCount(SQLModel, table=True):
    __tablename__ = "quality_confusion_count"
    __table_args__ = (
        UniqueConstraint(*DIMENSIONS, "predicted_class", "true_label", name="uq_quality_confusion"),
        Index("ix_quality_confusion_dep_hour", "deployment_id", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=200)
    model_ref: str = Field(max_length=300)
    experiment_id: str = Field(default="", max_length=200)
    variant: str = Field(default="", max_length=100)
    canary_id: int = 0
    canary_arm: str = Field(default="", max_length=20)
    hour: datetime = Field(sa_type=UTCDateTime)
    predicted_class: str = Field(max_length=200)
    true_label: str = Field(default="", max_length=200)  # '' while unlabelled
    n: int = 0
    label_delay_sum_s: float = 0.0
    label_delay_max_s: float = 0.0


class QualityConfidenceCount(SQLModel, table=True):
    __tablename__ = "quality_confidence_count"
    __table_args__ = (
        UniqueConstraint(*DIMENSIONS, "confidence_bin", "outcome", name="uq_quality_confidence"),
        Index("ix_quality_confidence_dep_hour", "deployment_id", "hour"),
    )

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=200)
    model_ref: str = Field(max_length=300)
    experiment_id: str = Field(default="", max_length=200)
    variant: str = Field(default="", max_length=100)
    canary_id: int = 0
    canary_arm: str = Field(default="", max_length=20)
    hour: datetime = Field(sa_type=UTCDateTime)
    confidence_bin: int = 0  # 0..9: [0, 0.1), ..., [0.9, 1.0]
    outcome: str = Field(default="", max_length=10)  # '', 'correct' or 'wrong'
    n: int = 0
    confidence_sum: float = 0.0


class QualityDriftAlarm(SQLModel, table=True):
    """One row per (deployment, version, hour) that drifted: the unique key makes the alarm's
    event fire once, whichever process (or scrape) looks first."""

    __tablename__ = "quality_drift_alarm"
    __table_args__ = (
        UniqueConstraint("deployment_id", "model_ref", "hour", name="uq_quality_drift_alarm"),
    )

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=200)
    model_ref: str = Field(max_length=300)
    hour: datetime = Field(sa_type=UTCDateTime)
    p_class_mix: float | None = None
    p_confidence: float | None = None
    at: datetime = Field(sa_type=UTCDateTime)
