"""The canary's transitions in the deployments' state machine (see store.py): start, step,
promote, abort, pause and resume, each one transaction with the deployment row's generation bump,
the revision, the audit entry, the event and the registry statuses it implies. The ``*_in``
forms run inside a caller's transaction, so the judge records an analysis and acts on it in the
same commit."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, delete, select

from core.deployments.canary_policy import CanaryPolicy, PolicyState
from core.deployments.config import DeploymentConfig
from core.deployments.store import DeploymentStore, end_canary, split_ref
from core.errors import ConflictError
from core.events import emit
from core.served_versions import versions_of
from data.canary_tables import CanaryRow, CanarySampleRow
from data.types import utcnow


def summary(row: CanaryRow) -> dict[str, Any]:
    return {
        "canary_id": row.id,
        "canary": row.canary_ref,
        "stable": row.stable_ref,
        "state": row.state,
        "weight": row.weight,
    }


class CanaryStore:
    def __init__(self, deployments: DeploymentStore) -> None:
        self.deployments = deployments
        self.db = deployments.db
        self.audit = deployments.audit

    def require_active(self, session: Session, deployment_id: str) -> CanaryRow:
        row = self.deployments.active_canary_in(session, deployment_id, lock=True)
        if row is None:
            self.deployments.row(session, deployment_id)  # NotFoundError for an unknown id
            raise ConflictError(f"no canary is running on {deployment_id}")
        return row

    def list(self, include_ended: bool = False) -> list[CanaryRow]:
        query = select(CanaryRow).order_by(col(CanaryRow.id))
        if not include_ended:
            query = query.where(col(CanaryRow.state).in_(("progressing", "paused")))
        with self.db.session() as session:
            return list(session.exec(query).all())

    def _bump(self, session: Session, deployment_id: str, reason: str) -> None:
        dep = self.deployments.row(session, deployment_id, lock=True)
        self.deployments.bump(dep, reason)
        session.add(dep)

    # ---- transitions ---------------------------------------------------------------------

    def start(
        self,
        config: DeploymentConfig,
        *,
        canary_ref: str,
        weight: float,
        now: float,
        actor: str | None = None,
        policy_state: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Route ``weight`` percent of the deployment to the verified canary version."""
        with self.deployments.transition("canary_start") as session:
            dep = self.deployments.row(session, config.deployment_id, lock=True)
            if dep.status != "running":
                raise ConflictError(f"deployment {config.deployment_id!r} is {dep.status}")
            if self.deployments.active_canary_in(session, config.deployment_id) is not None:
                raise ConflictError(f"a canary is already running on {config.deployment_id}")
            stable = DeploymentConfig.from_dict(dep.config)
            # The deployment's own share among deployments stays; the canary's is its weight.
            stored = DeploymentConfig.from_dict(
                {**config.to_dict(), "traffic_percentage": stable.traffic_percentage}
            )
            row = CanaryRow(
                deployment_id=config.deployment_id, model_id=config.model_id,
                version=config.version, canary_ref=canary_ref, stable_ref=stable.serving_ref,
                state="progressing", weight=weight, config=stored.to_dict(),
                step_started_at=now,
                next_analysis_at=now + float(config.canary.analysis_interval_s),
                reason="started", actor=actor or self.audit.default_actor,
                policy_state=policy_state,
            )  # fmt: skip
            session.add(row)
            session.flush()
            self.deployments.bump(dep, f"canary {canary_ref} at {weight:g}%")
            session.add(dep)
            self.deployments.revision(session, stored, "canary", f"canary at {weight:g}%", actor)
            self.deployments.sync_registry(
                session, versions_of(row.model_id, row.version, row.config),
                f"canary on {config.deployment_id}", actor,
            )  # fmt: skip
            self.audit.record(
                session, "canary.start", "deployment", config.deployment_id,
                after=summary(row), detail=f"{weight:g}% to {canary_ref}", actor=actor,
            )  # fmt: skip
            emit(
                "canary.started",
                f"{config.deployment_id}: canary {canary_ref} takes {weight:g}% "
                f"(stable {row.stable_ref})",
                source=config.deployment_id,
                data={**summary(row), "steps": list(config.canary.steps)},
                session=session,
            )
            return summary(row)

    def step_in(
        self, session: Session, row: CanaryRow, target: float, now: float, detail: str,
        actor: str, evidence: dict[str, Any],
    ) -> None:  # fmt: skip
        before = row.weight
        row.weight, row.step_started_at = target, now
        row.updated_at = utcnow()
        session.add(row)
        self._bump(session, row.deployment_id, f"canary {row.canary_ref} at {target:g}%")
        self.audit.record(
            session, "canary.step", "deployment", row.deployment_id,
            before={"weight": before}, after=summary(row), detail=detail, actor=actor,
        )  # fmt: skip
        emit(
            "canary.stepped",
            f"{row.deployment_id}: canary {row.canary_ref} {before:g}% -> {target:g}%",
            source=row.deployment_id,
            data={**summary(row), "from": before, "evidence": evidence},
            session=session,
        )

    def promote(
        self, deployment_id: str, reason: str = "manual promotion", actor: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The canary becomes the deployment's version (all traffic)."""
        with self.deployments.transition("canary_promote") as session:
            return self.promote_in(session, self.require_active(session, deployment_id),
                                   reason, actor, evidence)  # fmt: skip

    def promote_in(
        self, session: Session, row: CanaryRow, reason: str, actor: str | None,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        store = self.deployments
        dep = store.row(session, row.deployment_id, lock=True)
        config = DeploymentConfig.from_dict(row.config)
        old_ref = f"{dep.model_id}:{dep.version}"
        left = versions_of(dep.model_id, dep.version, dep.config)
        store.close_active_revision(session, row.deployment_id, "replaced")
        store.set_canary_revision(session, row.deployment_id, "active", f"promoted: {reason}")
        dep.model_id, dep.version, dep.config = config.model_id, config.version, row.config
        dep.health = "healthy"
        store.bump(dep, f"canary promoted: {reason}")
        session.add(dep)
        end_canary(session, row, "promoted", reason, weight=100.0)
        store.sync_registry(
            session, [*versions_of(row.model_id, row.version, row.config), *left],
            f"canary promoted on {row.deployment_id}", actor,
        )  # fmt: skip
        self.audit.record(
            session, "canary.promote", "deployment", row.deployment_id,
            before={"model_version": old_ref}, after=summary(row), detail=reason, actor=actor,
        )  # fmt: skip
        emit(
            "canary.promoted",
            f"{row.deployment_id} now serves {row.canary_ref} (was {row.stable_ref}): {reason}",
            source=row.deployment_id,
            data={**summary(row), "evidence": evidence or {}},
            session=session,
        )
        return summary(row)

    def abort(
        self, deployment_id: str, reason: str = "manual abort", actor: str | None = None,
        failed: bool = False, evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """All traffic back to stable; ``failed`` also marks the canary version FAILED."""
        with self.deployments.transition("canary_abort") as session:
            return self.abort_in(session, self.require_active(session, deployment_id),
                                 reason, actor, failed, evidence)  # fmt: skip

    def abort_in(
        self, session: Session, row: CanaryRow, reason: str, actor: str | None,
        failed: bool = False, evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        self.deployments.set_canary_revision(
            session, row.deployment_id, "failed" if failed else "aborted",
            f"canary aborted: {reason}",
        )  # fmt: skip
        self._bump(session, row.deployment_id, f"canary aborted: {reason}")
        end_canary(session, row, "aborted", reason, weight=0.0)
        mine = versions_of(row.model_id, row.version, row.config)
        ensemble = bool(row.config.get("ensemble"))
        self.deployments.sync_registry(
            session, mine, reason[:500], actor,
            failed=mine if failed and not ensemble else (),
        )  # fmt: skip
        self.audit.record(
            session, "canary.abort", "deployment", row.deployment_id,
            after={**summary(row), "evidence": evidence or {}}, detail=reason, actor=actor,
        )  # fmt: skip
        emit(
            "canary.aborted",
            f"{row.deployment_id}: canary {row.canary_ref} aborted, all traffic back to "
            f"{row.stable_ref}: {reason}",
            source=row.deployment_id,
            severity="critical" if failed else "warning",
            data={**summary(row), "evidence": evidence or {}},
            session=session,
        )
        return summary(row)

    def set_paused(
        self, deployment_id: str, paused: bool, now: float, actor: str | None = None
    ) -> dict[str, Any]:
        verb = "pause" if paused else "resume"
        with self.deployments.transition(f"canary_{verb}") as session:
            row = self.require_active(session, deployment_id)
            if (row.state == "paused") == paused:
                raise ConflictError(f"the canary on {deployment_id} is already {row.state}")
            row.state = "paused" if paused else "progressing"
            if not paused:  # judge only what comes after the pause, on a fresh step clock
                config = DeploymentConfig.from_dict(row.config)
                row.step_started_at = now
                row.next_analysis_at = now + float(config.canary.analysis_interval_s)
                if row.policy_state:
                    policy = CanaryPolicy.from_config(config)
                    state = PolicyState.from_dict(row.policy_state)
                    row.policy_state = policy.resume(state, now).to_dict()
                session.exec(delete(CanarySampleRow).where(CanarySampleRow.canary_id == row.id))
            row.updated_at = utcnow()
            session.add(row)
            self.audit.record(
                session, f"canary.{verb}", "deployment", deployment_id, after=summary(row),
                actor=actor,
            )  # fmt: skip
            emit(
                f"canary.{verb}d",
                f"{deployment_id}: canary {row.canary_ref} {verb}d at {row.weight:g}%",
                source=deployment_id,
                data=summary(row),
                session=session,
            )
            return summary(row)


__all__ = ["CanaryStore", "split_ref", "summary"]
