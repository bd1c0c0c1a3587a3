"""``deployment health`` for the CLI: ask the server that serves the home when there is one
(it has the model loaded and probes it on its own schedule), else load and probe here. Every
answer says who checked, so a script and a person know what the verdict is worth."""

from __future__ import annotations

from typing import Any

from core.context import get_context
from core.errors import UnreachableError, ValidationError


def check_health(
    deployment_id: str, url: str | None = None, token: str | None = None, in_process: bool = False
) -> dict[str, Any]:
    """The CLI's answer: ``url``'s server, else the home's live server, else this process.
    A server found in the database that no longer answers (killed a moment ago) is skipped."""
    if url and in_process:
        raise ValidationError("--url and --in-process exclude each other")
    if url:
        return ask_server(url, token, deployment_id)
    found = None if in_process else server_for_home()
    if found:
        try:
            return ask_server(found, token, deployment_id)
        except UnreachableError:
            pass  # its heartbeat has not gone stale yet; nobody serves the home now
    return probe_here(deployment_id)


def server_for_home() -> str | None:
    """The URL of a server that recorded itself in this home's database and is alive."""
    from core.server.presence import reachable_server

    server = reachable_server(get_context().db)
    return server.url if server else None


def ask_server(url: str, token: str | None, deployment_id: str) -> dict[str, Any]:
    """With a token, the server probes now (operator role); without one, its last verdict."""
    from core.remote.client import ApiClient, part

    client = ApiClient(url, token, timeout_s=60.0)
    try:
        if token:
            result = client.post(f"/deployments/{part(deployment_id)}/health")
            result["checked_by"] = f"probed now by the server at {url}"
        else:
            status = client.get(f"/deployments/{part(deployment_id)}")
            result = last_check(status)
            result["checked_by"] = (
                f"the server at {url}, its last health check (an operator --token probes now)"
            )
    finally:
        client.close()
    result["server"] = url
    return result


def last_check(status: dict[str, Any]) -> dict[str, Any]:
    """A health answer from ``GET /deployments/{id}`` (the supervisor's running verdict)."""
    healthy = status["status"] == "running" and status["health"] == "healthy"
    if healthy:
        detail = "healthy at the last check"
    elif status["status"] != "running":
        detail = f"deployment is {status['status']}"
    else:
        failures = status.get("consecutive_health_failures")
        detail = f"health is {status['health']}" + (
            f" ({failures} failed checks in a row)" if failures else ""
        )
    return {
        "deployment_id": status["deployment_id"],
        "model_version": status["model_version"],
        "healthy": healthy,
        "status": status["status"],
        "latency_ms": None,
        "detail": detail,
        "consecutive_failures": status.get("consecutive_health_failures"),
    }


def probe_here(deployment_id: str) -> dict[str, Any]:
    from core.deployments import get_deployment_manager

    manager = get_deployment_manager()
    try:
        result = manager.health(deployment_id)
    finally:
        manager.close()
    result["checked_by"] = "probed in this process (no server serves this home)"
    result["server"] = None
    return result
