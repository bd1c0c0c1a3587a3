"""The narrow view of a serving process that monitoring reads (metrics, alerts, automated
actions): which deployments it serves now and their rolling numbers, plus the one action it may
take. ``DeploymentManager`` implements it; monitoring never imports the deployments package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ServedDeploymentView(Protocol):
    config: Any  # DeploymentConfig: deployment_id, rollback_on_error
    model_ref: str
    healthy: bool

    def traffic_split(self) -> dict[str, float]: ...


class ServingView(Protocol):
    def served_deployments(self) -> Mapping[str, ServedDeploymentView]: ...

    def current_metrics(
        self, deployment_id: str, model_version: str | None = None, window_seconds: float = ...
    ) -> Any:
        """PerformanceMetrics of a deployment, or of one version's arm within it."""

    def rollback_deployment(
        self,
        deployment_id: str,
        reason: str = ...,
        *,
        failed: bool = ...,
        actor: str | None = ...,
        evidence: dict[str, Any] | None = ...,
    ) -> Any: ...
