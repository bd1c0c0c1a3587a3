"""Experiment lifecycle and the read models the manager hands out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from core.errors import InvalidTransitionError, ValidationError
from core.experiments.config import ExperimentConfig


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"  # ended by a person
    COMPLETED = "completed"  # ended by the auto-stop check (conclusive or out of time)

    @classmethod
    def parse(cls, value: str | ExperimentStatus) -> ExperimentStatus:
        if isinstance(value, ExperimentStatus):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValidationError(
                f"unknown experiment status {value!r}; expected one of: {names}"
            ) from None

    @property
    def ended(self) -> bool:
        return self in (ExperimentStatus.STOPPED, ExperimentStatus.COMPLETED)


TRANSITIONS: dict[ExperimentStatus, frozenset[ExperimentStatus]] = {
    ExperimentStatus.DRAFT: frozenset({ExperimentStatus.RUNNING}),
    ExperimentStatus.RUNNING: frozenset({ExperimentStatus.STOPPED, ExperimentStatus.COMPLETED}),
    ExperimentStatus.STOPPED: frozenset(),
    ExperimentStatus.COMPLETED: frozenset(),
}


def check_transition(
    experiment_id: str, current: ExperimentStatus, target: ExperimentStatus
) -> None:
    if target in TRANSITIONS[current]:
        return
    allowed = ", ".join(sorted(s.value.upper() for s in TRANSITIONS[current])) or "none (ended)"
    raise InvalidTransitionError(
        f"experiment {experiment_id} is {current.value.upper()}; cannot move to "
        f"{target.value.upper()} (allowed: {allowed})"
    )


@dataclass(frozen=True)
class AllocationChange:
    """One entry of the allocation history; ``version`` 1 is the configured split."""

    experiment_id: str
    version: int
    allocation: dict[str, float]
    source: str  # initial | manual | bandit
    at: datetime
    actor: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["at"] = self.at.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AllocationChange:
        return cls(**{**d, "at": datetime.fromisoformat(d["at"])})


@dataclass(frozen=True)
class ExperimentInfo:
    experiment_id: str
    name: str
    description: str
    status: ExperimentStatus
    config: ExperimentConfig
    allocation: dict[str, float]
    allocation_version: int
    created_at: datetime
    created_by: str
    started_at: datetime | None
    ended_at: datetime | None
    stop_reason: str
    stopped_by: str

    def duration_hours(self, now: datetime) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at or now
        return max((end - self.started_at).total_seconds() / 3600.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "description": self.description,
            "status": self.status.value,
            "allocation": dict(self.allocation),
            "allocation_version": self.allocation_version,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "stop_reason": self.stop_reason,
            "stopped_by": self.stopped_by,
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentInfo:
        """From ``to_dict`` or from ``get_experiment_status``, which extends it."""
        when = lambda k: datetime.fromisoformat(d[k]) if d.get(k) else None  # noqa: E731
        return cls(
            experiment_id=d["experiment_id"],
            name=d["name"],
            description=d["description"],
            status=ExperimentStatus(d["status"]),
            config=ExperimentConfig.from_dict(d["config"]),
            allocation=dict(d["allocation"]),
            allocation_version=d["allocation_version"],
            created_at=datetime.fromisoformat(d["created_at"]),
            created_by=d["created_by"],
            started_at=when("started_at"),
            ended_at=when("ended_at"),
            stop_reason=d["stop_reason"],
            stopped_by=d["stopped_by"],
        )


@dataclass(frozen=True)
class CheckAction:
    """What one pass of the background check did to one experiment."""

    experiment_id: str
    action: str  # auto_stopped | bandit_update
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
