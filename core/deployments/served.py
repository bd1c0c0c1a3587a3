"""What a serving process holds for one version and one deployment: the runtime of a version
(``ServedModel``), the deployment's pointer to it with its health and canary route
(``ServedDeployment``, ``CanaryRoute``). LocalServing (serving.py) owns the collection."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.deployments.config import DeploymentConfig
from core.deployments.sections import HealthCheckConfig

if TYPE_CHECKING:
    from inference.runtime import BatchedRuntime


@dataclass
class ServedModel:
    model_ref: str
    labels: list[str]
    clip_samples: int
    runtime: BatchedRuntime
    device: str


def stable_fraction(key: str) -> float:
    """A unit id -> [0, 1) mapping that is identical in every process and on every machine."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class CanaryRoute:
    """A canary's sticky share of one deployment's requests (core/deployments/canary.py).

    A unit goes to the canary when its hash falls below the weight, so raising the weight only
    adds units: nobody who saw the canary is sent back to stable while it progresses."""

    model: ServedModel
    weight: float  # percent
    canary_id: int
    salt: str
    health_check: HealthCheckConfig  # the canary's own probe settings

    def takes(self, unit_id: str) -> bool:
        return stable_fraction(f"{self.salt}:{unit_id}") * 100.0 < self.weight


@dataclass
class ServedDeployment:
    config: DeploymentConfig
    model_ref: str
    generation: int
    consecutive_failures: int = 0
    healthy: bool = True
    last_probe: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    canary: CanaryRoute | None = None

    def traffic_split(self) -> dict[str, float]:
        """Version -> percent of this deployment's requests (read by the metrics)."""
        if self.canary is None:
            return {self.model_ref: 100.0}
        weight = self.canary.weight
        return {self.model_ref: 100.0 - weight, self.canary.model.model_ref: weight}


def models_in(model: ServedModel) -> list[ServedModel]:
    """The model and, for an ensemble, the members whose shared runtimes it uses."""
    return [model, *getattr(model, "members", ())]
