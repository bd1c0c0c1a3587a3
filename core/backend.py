"""What the console reads and changes, in one of two places: the core services of a home
(``LocalBackend``) or a running server over HTTP (``RemoteBackend``, ``nightscan tui --server``).

Both implement ``ConsoleBackend``: ``registry``, ``experiments`` and ``deployments`` with the
method names, arguments and return types of ``get_model_registry()``, ``get_ab_test_manager()``
and ``get_deployment_manager()`` (the subset the console uses, typed below as Protocols), plus
``events()``, ``audit()`` and ``quality()``; screens use nothing else, so they never know which
it is. ``tests/server/test_backend_parity.py`` calls every method of the seam on both, over one
database, and asserts they answer alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from core.audit import AuditEntry
    from core.deployments.config import DeploymentConfig
    from core.deployments.info import DeploymentInfo
    from core.deployments.tracker import PerformanceMetrics, SecondSample
    from core.events import Event
    from core.experiments.config import ExperimentConfig
    from core.experiments.models import AllocationChange, ExperimentInfo, ExperimentStatus
    from core.lifecycle import ModelStatus
    from core.model_metadata import ModelMetadata
    from core.registry import StatusChange


# ---- the seam --------------------------------------------------------------------------------
# ``actor`` is who a change is recorded under: locally the caller says (None: this machine's
# user); remotely the server records the token's name, and an actor may only repeat it.


class RegistryService(Protocol):
    def list_models(self) -> list[ModelMetadata]: ...
    def get_model(self, model_id: str, version: str) -> ModelMetadata: ...
    def status_history(self, model_id: str, version: str) -> list[StatusChange]: ...
    def compare_models(self, a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]: ...
    def update_status(
        self,
        model_id: str,
        version: str,
        status: ModelStatus | str,
        reason: str = "",
        actor: str | None = None,
    ) -> ModelMetadata: ...
    def set_tags(
        self,
        model_id: str,
        version: str,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        actor: str | None = None,
    ) -> ModelMetadata: ...
    def delete_model(self, model_id: str, version: str, actor: str | None = None) -> None: ...
    def verify_weights(self, model_id: str, version: str) -> dict[str, Any]: ...


class ExperimentService(Protocol):
    def list_experiments(
        self, status: ExperimentStatus | str | None = None
    ) -> list[ExperimentInfo]: ...
    def get_experiment(self, experiment_id: str) -> ExperimentInfo: ...
    def get_experiment_status(self, experiment_id: str) -> dict[str, Any]: ...
    def analyze_experiment(self, experiment_id: str) -> dict[str, Any]: ...
    def allocation_history(self, experiment_id: str) -> list[AllocationChange]: ...
    def create_experiment(
        self, config: ExperimentConfig | dict[str, Any], actor: str | None = None
    ) -> ExperimentInfo: ...
    def start_experiment(self, experiment_id: str, actor: str | None = None) -> ExperimentInfo: ...
    def stop_experiment(
        self, experiment_id: str, reason: str = "", actor: str | None = None
    ) -> ExperimentInfo: ...
    def set_allocation(
        self,
        experiment_id: str,
        allocation: dict[str, float],
        reason: str = "manual reallocation",
        actor: str | None = None,
    ) -> AllocationChange: ...


class TrackerService(Protocol):
    def get_current_metrics(
        self, deployment_id: str, window_seconds: float = ...
    ) -> PerformanceMetrics | None: ...
    def history(self, deployment_id: str, seconds: float = ...) -> list[SecondSample]: ...

    def by_process(self, deployment_id: str) -> dict[str, PerformanceMetrics]:
        """This host's serving processes, each one's own numbers."""


class CanaryService(Protocol):
    def list_canaries(self, include_ended: bool = False) -> list[dict[str, Any]]: ...
    def status(self, deployment_id: str, checks: int = 10) -> dict[str, Any]: ...
    def active(self, deployment_id: str) -> dict[str, Any] | None: ...
    def promote(
        self, deployment_id: str, reason: str = ..., actor: str | None = None
    ) -> dict[str, Any]: ...
    def abort(
        self, deployment_id: str, reason: str = ..., actor: str | None = None
    ) -> dict[str, Any]: ...
    def pause(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]: ...
    def resume(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]: ...


class DeploymentService(Protocol):
    @property
    def performance_tracker(self) -> TrackerService: ...
    @property
    def canaries(self) -> CanaryService: ...
    def list_deployments(self, include_stopped: bool = False) -> list[DeploymentInfo]: ...
    def get_deployment(self, deployment_id: str) -> DeploymentInfo: ...
    def get_status(self, deployment_id: str) -> dict[str, Any]: ...
    def deploy_model(self, config: DeploymentConfig, actor: str | None = None) -> bool: ...
    def undeploy(self, deployment_id: str, reason: str = "", actor: str | None = None) -> None: ...
    def rollback_deployment(
        self,
        deployment_id: str,
        reason: str = "manual rollback",
        *,
        failed: bool = False,
        actor: str | None = None,
    ) -> DeploymentInfo: ...
    def health(self, deployment_id: str) -> dict[str, Any]: ...


@runtime_checkable
class ConsoleBackend(Protocol):
    """Everything the console reads and changes."""

    remote: bool
    role: str | None  # the token's role; None: a local user, who may do everything

    @property
    def registry(self) -> RegistryService: ...
    @property
    def experiments(self) -> ExperimentService: ...
    @property
    def deployments(self) -> DeploymentService: ...
    def events(self, after_id: int | None = None, limit: int = 100) -> list[Event]: ...
    def audit(self, after_id: int | None = None, limit: int = 100) -> list[AuditEntry]: ...
    def quality(
        self, deployment_id: str, version: str | None = None, window: str = "all"
    ) -> dict[str, Any]: ...
    def close(self) -> None: ...


# Method names of each part of the seam, for the parity test (every one must be exercised).
SEAM: dict[str, type] = {
    "registry": RegistryService,
    "experiments": ExperimentService,
    "deployments": DeploymentService,
    "deployments.canaries": CanaryService,
    "deployments.performance_tracker": TrackerService,
    "": ConsoleBackend,
}


def seam_methods(part: type) -> list[str]:
    """The public callables a Protocol declares (not its properties)."""
    return sorted(
        name
        for name, value in vars(part).items()
        if not name.startswith("_") and callable(value) and not isinstance(value, property)
    )


class LocalBackend:
    """The services of the current core context (built on first use, so the registry screen
    does not pay for the A/B or serving modules)."""

    remote = False
    role: str | None = None  # no token: the local user may do everything

    @property
    def registry(self) -> RegistryService:
        from core.registry import get_model_registry

        return get_model_registry()

    @property
    def experiments(self) -> ExperimentService:
        from core.experiments import get_ab_test_manager

        return get_ab_test_manager()

    @property
    def deployments(self) -> DeploymentService:
        from core.deployments import get_deployment_manager

        return get_deployment_manager()

    def events(self, after_id: int | None = None, limit: int = 100) -> list[Event]:
        from core.events import recent_events

        return recent_events(after_id=after_id, limit=limit)

    def audit(self, after_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        from core.context import get_context

        return get_context().audit.entries(after_id=after_id, limit=limit)

    def quality(
        self, deployment_id: str, version: str | None = None, window: str = "all"
    ) -> dict[str, Any]:
        """The quality report as JSON types, exactly as ``GET /quality/{id}`` returns it."""
        from core.context import get_context
        from core.quality.service import jsonable, parse_window, quality_for_deployment

        span = parse_window(window)
        return jsonable(quality_for_deployment(get_context().db, deployment_id, version, span))

    def close(self) -> None:
        pass


class RemoteBackend:
    """A running ``nightscan serve``. Connecting asks the server who the token is, so a wrong
    URL or token fails here, before the console opens, with one readable error."""

    remote = True

    def __init__(self, url: str, token: str | None) -> None:
        from core.remote.client import ApiClient
        from core.remote.services import RemoteDeployments, RemoteExperiments, RemoteRegistry

        if not token:
            from core.errors import ValidationError

            raise ValidationError(
                "attaching to a server needs a token (--token or NIGHTSCAN_TOKEN)"
            )
        self.client = ApiClient(url, token)
        try:
            who = self.client.get("/whoami")
        except BaseException:
            self.client.close()
            raise
        self.user, self.role = who["name"], who["role"]
        self.client.actor = f"token:{self.user}"
        self.location = self.client.url
        self.registry = RemoteRegistry(self.client)
        self.experiments = RemoteExperiments(self.client)
        self.deployments = RemoteDeployments(self.client)

    def events(self, after_id: int | None = None, limit: int = 100) -> list[Event]:
        from core.events import Event

        found = self.client.get("/events", after_id=after_id, limit=limit)
        return [Event.from_dict(d) for d in found]

    def audit(self, after_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        from core.audit import AuditEntry

        found = self.client.get("/audit", after_id=after_id, limit=limit)
        return [AuditEntry.from_dict(d) for d in found]

    def quality(
        self, deployment_id: str, version: str | None = None, window: str = "all"
    ) -> dict[str, Any]:
        params = {"window": window} | ({"version": version} if version else {})
        from urllib.parse import quote

        return self.client.get(f"/quality/{quote(deployment_id, safe='')}", **params)

    def close(self) -> None:
        self.client.close()
