"""What a deployment is, as the faces see it: ``DeploymentInfo`` (the desired state of one
deployment) and ``Revision`` (one version it served), with their JSON forms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.deployments.config import DeploymentConfig

if TYPE_CHECKING:  # the table classes import SQLAlchemy; the CLI's direct reads must not
    from data.deployment_tables import DeploymentRow


@dataclass(frozen=True)
class DeploymentInfo:
    deployment_id: str
    model_id: str
    version: str
    environment: str
    status: str
    health: str
    config: DeploymentConfig
    generation: int
    reason: str
    created_at: datetime
    updated_at: datetime

    @property
    def model_ref(self) -> str:
        return f"{self.model_id}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "model_id": self.model_id,
            "version": self.version,
            "model_version": self.model_ref,
            "environment": self.environment,
            "status": self.status,
            "health": self.health,
            "traffic_percentage": self.config.traffic_percentage,
            "config": self.config.to_dict(),
            "generation": self.generation,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeploymentInfo:
        """From ``to_dict`` or from ``get_status``, which extends it."""
        plain = ("deployment_id", "model_id", "version", "environment", "status", "health")
        return cls(
            **{k: d[k] for k in (*plain, "generation", "reason")},
            config=DeploymentConfig.from_dict(d["config"]),
            created_at=datetime.fromisoformat(d["created_at"]),
            updated_at=datetime.fromisoformat(d["updated_at"]),
        )


@dataclass(frozen=True)
class Revision:
    id: int
    deployment_id: str
    model_id: str
    version: str
    status: str
    reason: str
    actor: str
    at: datetime


def info_from_row(row: DeploymentRow) -> DeploymentInfo:
    return DeploymentInfo(
        deployment_id=row.deployment_id,
        model_id=row.model_id,
        version=row.version,
        environment=row.environment,
        status=row.status,
        health=row.health,
        config=DeploymentConfig.from_dict(row.config),
        generation=row.generation,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
