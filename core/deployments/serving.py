"""What this process serves right now: one batched runtime per model version (shared by every
deployment and experiment variant that uses it) and the deployment -> version map.

Switching a deployment to another version is one dict assignment under a lock: requests already
queued on the old runtime finish there, new ones go to the new runtime, so a rollback fails no
request in flight. A runtime nobody references any more is drained and closed in the background.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.deployments.config import DeploymentConfig
from core.deployments.sections import HealthCheckConfig

if TYPE_CHECKING:
    from inference.runtime import BatchedRuntime

log = logging.getLogger(__name__)


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


class ServingPool:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.models: dict[str, ServedModel] = {}
        self.deployments: dict[str, ServedDeployment] = {}
        self.pinned: set[str] = set()  # versions served for experiments without a deployment

    def model_for(self, deployment_id: str) -> tuple[ServedDeployment, ServedModel] | None:
        with self.lock:
            dep = self.deployments.get(deployment_id)
            if dep is None:
                return None
            return dep, self.models[dep.model_ref]

    def install(self, dep: ServedDeployment, model: ServedModel) -> str | None:
        """Point a deployment at a model (atomically); returns the version it served before."""
        with self.lock:
            extra = dep.canary.model if dep.canary else None
            for m in models_in(model) + (models_in(extra) if extra else []):
                self.models.setdefault(m.model_ref, m)
            previous = self.deployments.get(dep.config.deployment_id)
            if previous is not None and previous.model_ref == dep.model_ref:
                # Same version, new generation (a canary step, a config change): its health
                # history carries over, or every step would reset the failure count.
                dep.consecutive_failures = previous.consecutive_failures
                dep.healthy = previous.healthy
                dep.last_probe = previous.last_probe
            self.deployments[dep.config.deployment_id] = dep
        self.release_unused()
        return previous.model_ref if previous else None

    def remove(self, deployment_id: str) -> None:
        with self.lock:
            self.deployments.pop(deployment_id, None)
        self.release_unused()

    def pick(self, request_id: str, model_id: str | None = None) -> str | None:
        """Choose a deployment by the deployments' traffic percentages, sticky per request id."""
        with self.lock:
            candidates = sorted(
                (d.config.deployment_id, d.config.traffic_percentage)
                for d in self.deployments.values()
                if d.healthy and (model_id is None or d.config.model_id == model_id)
            )
        total = sum(w for _, w in candidates)
        if not candidates or total <= 0:
            return None
        point = stable_fraction(f"traffic:{request_id}") * total
        for deployment_id, weight in candidates:
            if point < weight:
                return deployment_id
            point -= weight
        return candidates[-1][0]

    def release_unused(self) -> None:
        """Close runtimes that neither a deployment nor an experiment uses."""
        with self.lock:
            used = {d.model_ref for d in self.deployments.values()} | self.pinned
            used |= {d.canary.model.model_ref for d in self.deployments.values() if d.canary}
            groups = [models_in(self.models[r]) for r in used if r in self.models]
            used |= {m.model_ref for group in groups for m in group}  # ensemble members
            unused = [ref for ref in self.models if ref not in used]
            closing = [self.models.pop(ref) for ref in unused]
        for model in closing:
            # Drain off the caller's thread: in-flight requests finish on the old runtime.
            threading.Thread(
                target=model.runtime.close, kwargs={"drain": True}, daemon=True,
                name=f"drain-{model.model_ref}",
            ).start()  # fmt: skip

    def close(self) -> None:
        with self.lock:
            models = list(self.models.values())
            self.models.clear()
            self.deployments.clear()
        for model in models:
            model.runtime.close(drain=True)
