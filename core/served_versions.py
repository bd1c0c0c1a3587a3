"""Which model versions the deployments serve, read inside the caller's transaction.

The registry asks it before a status change or a delete (a served version may not be retired,
failed or deleted, and DEPLOYED is set only by deploying), and the deployment store asks it to
derive the registry statuses of the versions a transition touched (core/deployments/store.py).
A version is served by a running deployment as its stable version (or ensemble member) and by an
active canary as its canary version (or member). It reads the rows' stored JSON directly, so the
registry can use it without importing the deployments package.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from data.canary_tables import CanaryRow
from data.deployment_tables import DeploymentRow

ACTIVE_CANARY_STATES = ("progressing", "paused")
VersionKey = tuple[str, str]


def versions_of(model_id: str, version: str, config: dict[str, Any] | None) -> list[VersionKey]:
    """The versions one stored deployment config serves: its members for an ensemble."""
    members = ((config or {}).get("ensemble") or {}).get("models") or []
    refs = [m.rpartition(":") for m in members if isinstance(m, str) and ":" in m]
    return [(m, v) for m, _, v in refs] or [(model_id, version)]


def served_versions(session: Session) -> dict[VersionKey, list[str]]:
    """(model_id, version) -> the ids of the deployments that serve it, sorted."""
    served: dict[VersionKey, set[str]] = defaultdict(set)
    deployments = session.exec(
        select(DeploymentRow.deployment_id, DeploymentRow.model_id, DeploymentRow.version,
               DeploymentRow.config).where(DeploymentRow.status == "running")
    ).all()  # fmt: skip
    canaries = session.exec(
        select(CanaryRow.deployment_id, CanaryRow.model_id, CanaryRow.version,
               CanaryRow.config).where(col(CanaryRow.state).in_(ACTIVE_CANARY_STATES))
    ).all()  # fmt: skip
    for deployment_id, model_id, version, config in (*deployments, *canaries):
        for key in versions_of(model_id, version, config):
            served[key].add(deployment_id)
    return {key: sorted(ids) for key, ids in served.items()}


def served_by(session: Session, model_id: str, version: str) -> list[str]:
    return served_versions(session).get((model_id, version), [])
