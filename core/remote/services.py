"""Remote twins of the registry, the A/B test manager and the deployment manager: the subset of
their methods that the console uses, with the same names, arguments and return types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.deployments.canary import ACTIVE
from core.deployments.config import DeploymentConfig
from core.deployments.info import DeploymentInfo
from core.deployments.tracker import (
    HISTORY_SECONDS,
    WINDOW_SECONDS,
    PerformanceMetrics,
    SecondSample,
)
from core.errors import NotFoundError, ValidationError
from core.experiments.config import ExperimentConfig
from core.experiments.models import AllocationChange, ExperimentInfo, ExperimentStatus
from core.lifecycle import ModelStatus
from core.model_metadata import ModelMetadata
from core.registry import StatusChange
from core.remote.client import ApiClient, part

PAGE = 1000


def as_token(client: ApiClient, actor: str | None) -> None:
    """The server records every change under the token's name; an ``actor`` (accepted so the
    twins keep the local signatures) may only repeat that name, never claim another."""
    if actor is not None and actor != client.actor:
        raise ValidationError(
            f"the server records changes as {client.actor or 'the token'}, not {actor!r}"
        )


DEPLOY_TIMEOUT_S = 300.0  # verify, load, warm up and probe happen before the answer


class RemoteRegistry:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def _path(self, model_id: str, version: str) -> str:
        return f"/models/{part(model_id)}/{part(version)}"

    def list_models(self) -> list[ModelMetadata]:
        found: list[dict[str, Any]] = []
        while True:  # every version, a page at a time (the server caps a page)
            page = self.client.get("/models", limit=PAGE, offset=len(found))
            found += page
            if len(page) < PAGE:
                return [ModelMetadata.from_dict(d) for d in found]

    def get_model(self, model_id: str, version: str) -> ModelMetadata:
        return ModelMetadata.from_dict(self.client.get(self._path(model_id, version)))

    def exists(self, model_id: str, version: str) -> bool:
        try:
            self.client.get(self._path(model_id, version))
        except NotFoundError:
            return False
        return True

    def status_history(self, model_id: str, version: str) -> list[StatusChange]:
        found = self.client.get(self._path(model_id, version) + "/history")
        return [StatusChange.from_dict(d) for d in found]

    def compare_models(self, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
        return self.client.get("/models/compare", a=":".join(a), b=":".join(b))

    def update_status(
        self,
        model_id: str,
        version: str,
        status: ModelStatus | str,
        reason: str = "",
        actor: str | None = None,
    ) -> ModelMetadata:
        as_token(self.client, actor)
        body = {"status": str(status), "reason": reason}
        return ModelMetadata.from_dict(
            self.client.post(self._path(model_id, version) + "/status", body)
        )

    def set_tags(
        self,
        model_id: str,
        version: str,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        actor: str | None = None,
    ) -> ModelMetadata:
        as_token(self.client, actor)
        body = {"add": list(add), "remove": list(remove)}
        return ModelMetadata.from_dict(
            self.client.post(self._path(model_id, version) + "/tags", body)
        )

    def delete_model(self, model_id: str, version: str, actor: str | None = None) -> None:
        as_token(self.client, actor)
        self.client.delete(self._path(model_id, version))

    def verify_weights(self, model_id: str, version: str) -> dict[str, Any]:
        return self.client.post(self._path(model_id, version) + "/verify")


class RemoteExperiments:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def list_experiments(
        self, status: ExperimentStatus | str | None = None
    ) -> list[ExperimentInfo]:
        found = [ExperimentInfo.from_dict(d) for d in self.client.get("/experiments")]
        wanted = ExperimentStatus.parse(status) if status else None
        return [i for i in found if wanted is None or i.status == wanted]

    def get_experiment(self, experiment_id: str) -> ExperimentInfo:
        return ExperimentInfo.from_dict(self.get_experiment_status(experiment_id))

    def get_experiment_status(self, experiment_id: str) -> dict[str, Any]:
        return self.client.get(f"/experiments/{part(experiment_id)}")

    def analyze_experiment(self, experiment_id: str) -> dict[str, Any]:
        return self.client.get(f"/experiments/{part(experiment_id)}/analysis")

    def allocation_history(self, experiment_id: str) -> list[AllocationChange]:
        found = self.client.get(f"/experiments/{part(experiment_id)}/allocations")
        return [AllocationChange.from_dict(d) for d in found]

    def create_experiment(
        self, config: ExperimentConfig | dict[str, Any], actor: str | None = None
    ) -> ExperimentInfo:
        as_token(self.client, actor)
        if isinstance(config, ExperimentConfig):
            config = config.to_dict()
        return ExperimentInfo.from_dict(self.client.post("/experiments", config))

    def start_experiment(self, experiment_id: str, actor: str | None = None) -> ExperimentInfo:
        as_token(self.client, actor)
        return ExperimentInfo.from_dict(
            self.client.post(f"/experiments/{part(experiment_id)}/start")
        )

    def stop_experiment(
        self, experiment_id: str, reason: str = "", actor: str | None = None
    ) -> ExperimentInfo:
        as_token(self.client, actor)
        path = f"/experiments/{part(experiment_id)}/stop"
        return ExperimentInfo.from_dict(self.client.post(path, {"reason": reason}))

    def set_allocation(
        self,
        experiment_id: str,
        allocation: dict[str, float],
        reason: str = "manual reallocation",
        actor: str | None = None,
    ) -> AllocationChange:
        as_token(self.client, actor)
        path = f"/experiments/{part(experiment_id)}/allocation"
        body = {"allocation": allocation, "reason": reason or "manual reallocation"}
        return AllocationChange.from_dict(self.client.post(path, body))


class RemoteTracker:
    """The server's live metrics (its own tracker, or the snapshots its peers persist)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def get_current_metrics(
        self, deployment_id: str, window_seconds: float = WINDOW_SECONDS
    ) -> PerformanceMetrics | None:
        if window_seconds != WINDOW_SECONDS:
            raise ValidationError(f"the server keeps one {WINDOW_SECONDS:g} s window")
        found = self.client.get(f"/deployments/{part(deployment_id)}/metrics")["metrics"]
        return PerformanceMetrics.from_dict(found) if found else None

    def by_process(self, deployment_id: str) -> dict[str, PerformanceMetrics]:
        found = self.client.get(f"/deployments/{part(deployment_id)}/metrics")
        return {k: PerformanceMetrics.from_dict(m) for k, m in found.get("processes", {}).items()}

    def history(self, deployment_id: str, seconds: float = HISTORY_SECONDS) -> list[SecondSample]:
        path = f"/deployments/{part(deployment_id)}/history"
        found = self.client.get(path, seconds=int(min(max(seconds, 1), 900)))
        return [SecondSample(**s) for s in found["samples"]]


class RemoteCanaries:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def list_canaries(self, include_ended: bool = False) -> list[dict[str, Any]]:
        return self.client.get("/canaries", include_ended=include_ended)

    def status(self, deployment_id: str, checks: int = 10) -> dict[str, Any]:
        return self.client.get(f"/deployments/{part(deployment_id)}/canary", checks=checks)

    def active(self, deployment_id: str) -> dict[str, Any] | None:
        """The running or paused canary's status, else None (as the local one)."""
        try:
            found = self.status(deployment_id)
        except NotFoundError:
            return None
        return found if found["state"] in ACTIVE else None

    def _act(
        self, deployment_id: str, action: str, reason: str = "", actor: str | None = None
    ) -> dict[str, Any]:
        as_token(self.client, actor)
        path = f"/deployments/{part(deployment_id)}/canary/{action}"
        return self.client.post(path, {"reason": reason})

    def promote(
        self, deployment_id: str, reason: str = "manual promotion", actor: str | None = None
    ) -> dict[str, Any]:
        return self._act(deployment_id, "promote", reason, actor)

    def abort(
        self, deployment_id: str, reason: str = "manual abort", actor: str | None = None
    ) -> dict[str, Any]:
        return self._act(deployment_id, "abort", reason, actor)

    def pause(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]:
        return self._act(deployment_id, "pause", actor=actor)

    def resume(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]:
        return self._act(deployment_id, "resume", actor=actor)


class RemoteDeployments:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.performance_tracker = RemoteTracker(client)
        self.canaries = RemoteCanaries(client)

    def list_deployments(self, include_stopped: bool = False) -> list[DeploymentInfo]:
        found = self.client.get("/deployments", include_stopped=include_stopped)
        return [DeploymentInfo.from_dict(d) for d in found]

    def get_deployment(self, deployment_id: str) -> DeploymentInfo:
        return DeploymentInfo.from_dict(self.get_status(deployment_id))

    def get_status(self, deployment_id: str) -> dict[str, Any]:
        return self.client.get(f"/deployments/{part(deployment_id)}")

    def deploy_model(self, config: DeploymentConfig, actor: str | None = None) -> bool:
        as_token(self.client, actor)
        self.client.post("/deployments", config.to_dict(), timeout_s=DEPLOY_TIMEOUT_S)
        return True

    def undeploy(self, deployment_id: str, reason: str = "", actor: str | None = None) -> None:
        as_token(self.client, actor)
        self.client.delete(f"/deployments/{part(deployment_id)}", reason=reason or None)

    def rollback_deployment(
        self,
        deployment_id: str,
        reason: str = "manual rollback",
        *,
        failed: bool = False,
        actor: str | None = None,
    ) -> DeploymentInfo:
        as_token(self.client, actor)
        if failed:
            raise ValidationError("a rollback through the server cannot mark the version failed")
        path = f"/deployments/{part(deployment_id)}/rollback"
        return DeploymentInfo.from_dict(self.client.post(path, {"reason": reason}))

    def health(self, deployment_id: str) -> dict[str, Any]:
        return self.client.post(f"/deployments/{part(deployment_id)}/health")
