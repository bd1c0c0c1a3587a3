"""Canary rollouts: one row per canary run (its routing weight and stepper state, read by every
serving process), the judge's verdict for every analysis, and per-arm observation batches that
each serving process flushes so the judge sees the traffic of all of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow


class CanaryRow(SQLModel, table=True):
    __tablename__ = "canary"
    __table_args__ = (Index("ix_canary_deployment", "deployment_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    deployment_id: str = Field(max_length=200)
    model_id: str = Field(max_length=200)  # the canary version
    version: str = Field(max_length=100)
    canary_ref: str = Field(max_length=300)  # what answers canary requests (model or ensemble)
    stable_ref: str = Field(max_length=300)
    # progressing or paused: routing its weight; promoted or aborted: over.
    state: str = Field(max_length=20, index=True)
    weight: float  # percent of the deployment's requests
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Times on the controller's clock (unix seconds; tests inject a clock).
    step_started_at: float = 0.0
    next_analysis_at: float = 0.0
    # The policy's state (core/deployments/canary_policy.py): its sufficient statistics over the
    # whole rollout. The counters below are the analyses' tallies, for people.
    passes: int = 0
    fails: int = 0
    inconclusive: int = 0
    consecutive_failures: int = 0
    checks: int = 0
    # Observation batches up to this id are judged (kept across INCONCLUSIVE verdicts).
    consumed_sample_id: int = 0
    last_verdict: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    policy_state: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reason: str = ""
    actor: str = ""
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CanaryCheckRow(SQLModel, table=True):
    """One analysis: the verdict, the weight it was taken at, and the judge's evidence."""

    __tablename__ = "canary_check"
    __table_args__ = (Index("ix_canary_check_canary", "canary_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    canary_id: int
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    weight: float
    verdict: str = Field(max_length=20)
    action: str = Field(default="", max_length=20)  # stepped, promoted, aborted or ""
    reason: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class CanarySampleRow(SQLModel, table=True):
    """Requests one serving process saw on one arm since its previous flush."""

    __tablename__ = "canary_sample"
    # Ids only grow (SQLite would reuse deleted ones): the judge consumes batches by id.
    __table_args__ = (
        Index("ix_canary_sample_canary", "canary_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    canary_id: int
    arm: str = Field(max_length=10)  # stable or canary
    requests: int = 0
    errors: int = 0
    labelled: int = 0
    correct: int = 0
    latencies_ms: list[float] = Field(default_factory=list, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
