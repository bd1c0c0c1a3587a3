"""What the console reads and changes, in one of two places: the core services of a home
(``LocalBackend``) or a running server over HTTP (``RemoteBackend``, ``nightscan tui --server``).

Both offer ``registry``, ``experiments`` and ``deployments`` with the method names and return
types of ``get_model_registry()``, ``get_ab_test_manager()`` and ``get_deployment_manager()``,
plus ``events()``, ``audit()`` and ``quality()``; screens use nothing else, so they never
know which it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.audit import AuditEntry
    from core.events import Event


class LocalBackend:
    """The services of the current core context (built on first use, so the registry screen
    does not pay for the A/B or serving modules)."""

    remote = False
    role: str | None = None  # no token: the local user may do everything

    @property
    def registry(self) -> Any:
        from core.registry import get_model_registry

        return get_model_registry()

    @property
    def experiments(self) -> Any:
        from core.experiments import get_ab_test_manager

        return get_ab_test_manager()

    @property
    def deployments(self) -> Any:
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
