"""``DeploymentStore``: the deployments' state machine, one database transaction per transition.

Every transition (deploy, failed attempt, rollback, undeploy, health change, and the canary's
start, step, promote, abort, pause and resume in canary_store.py) writes the deployment row, its
revision, the canary row, the audit entry, the event and the registry statuses of the versions it
touched in ONE transaction, so a crash leaves either all of it or none of it. The registry
statuses are not decided case by case but derived from what the deployments serve after the
change (``_sync_registry``), which makes these invariants hold by construction:

* every version a deployment serves (stable, canary or ensemble member) is registered and neither
  RETIRED, FAILED nor deleted;
* a version is DEPLOYED in the registry exactly when some deployment serves it;
* a rollback target exists, is registered and is not FAILED (``rollback_target``).

``invariants.py`` checks them on start for databases written by older versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session, col, delete, select

from core.audit import AuditLog
from core.deployments.config import DeploymentConfig
from core.deployments.crash_points import crash_point
from core.deployments.info import DeploymentInfo, Revision, info_from_row
from core.errors import ConflictError, NotFoundError
from core.events import emit
from core.lifecycle import TRANSITIONS, ModelStatus
from core.registry import ModelRegistry
from core.served_versions import ACTIVE_CANARY_STATES, VersionKey, served_versions, versions_of
from data.canary_tables import CanaryRow, CanarySampleRow
from data.database import Database
from data.deployment_tables import DeploymentRevisionRow, DeploymentRow
from data.types import utcnow


def split_ref(ref: str) -> VersionKey:
    model_id, _, version = ref.rpartition(":")
    return model_id, version


class DeploymentStore:
    def __init__(self, db: Database, registry: ModelRegistry, audit: AuditLog) -> None:
        self.db = db
        self.registry = registry
        self.audit = audit

    # ---- reads ---------------------------------------------------------------------------

    @staticmethod
    def row(session: Session, deployment_id: str, lock: bool = False) -> DeploymentRow:
        query = select(DeploymentRow).where(DeploymentRow.deployment_id == deployment_id)
        row = session.exec(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFoundError(f"deployment {deployment_id!r} does not exist")
        return row

    def get(self, deployment_id: str) -> DeploymentInfo:
        with self.db.session() as session:
            return info_from_row(self.row(session, deployment_id))

    def list(self, include_stopped: bool = False) -> list[DeploymentInfo]:
        query = select(DeploymentRow).order_by(col(DeploymentRow.deployment_id))
        if not include_stopped:
            query = query.where(DeploymentRow.status == "running")
        with self.db.session() as session:
            return [info_from_row(r) for r in session.exec(query).all()]

    def revisions(self, deployment_id: str) -> list[Revision]:
        query = (
            select(DeploymentRevisionRow)
            .where(DeploymentRevisionRow.deployment_id == deployment_id)
            .order_by(col(DeploymentRevisionRow.id))
        )
        with self.db.session() as session:
            return [Revision(**r.model_dump()) for r in session.exec(query).all()]

    @staticmethod
    def active_canary_in(session: Session, deployment_id: str, lock: bool = False):
        query = select(CanaryRow).where(
            CanaryRow.deployment_id == deployment_id,
            col(CanaryRow.state).in_(ACTIVE_CANARY_STATES),
        )
        return session.exec(query.with_for_update() if lock else query).first()

    def active_canary(self, deployment_id: str) -> CanaryRow | None:
        with self.db.session() as session:
            return self.active_canary_in(session, deployment_id)

    def rollback_target(self, deployment_id: str, current_version: str) -> Revision | None:
        """The newest version this deployment served healthily before, still registered and
        not FAILED (a deleted or failed version is skipped, never restored)."""
        for rev in reversed(self.revisions(deployment_id)):
            if rev.status != "replaced" or rev.version == current_version:
                continue
            with self.db.session() as session:
                row = self.registry.find_row(session, rev.model_id, rev.version)
            if row is not None and ModelStatus(row.status) is not ModelStatus.FAILED:
                return rev
        return None

    # ---- the transaction shape -----------------------------------------------------------

    @contextmanager
    def transition(self, name: str) -> Iterator[Session]:
        """One write transaction, with crash points on both sides of its commit."""
        with self.db.write() as session:
            yield session
            crash_point(f"{name}:before_commit")
        crash_point(f"{name}:after_commit")

    def sync_registry(
        self,
        session: Session,
        touched: Iterable[VersionKey],
        reason: str,
        actor: str | None,
        failed: Iterable[VersionKey] = (),
    ) -> None:
        """Derive the registry status of each touched version from what is served now: served
        -> DEPLOYED; not served and DEPLOYED -> RETIRED (FAILED when it is in ``failed``)."""
        session.flush()
        served = served_versions(session)
        failed = set(failed)
        for key in dict.fromkeys(touched):
            row = self.registry.find_row(session, *key)
            if row is None:
                if key in served:
                    raise NotFoundError(f"model {key[0]}:{key[1]} is not registered")
                continue
            status = ModelStatus(row.status)
            if key in served:
                target = ModelStatus.DEPLOYED
            elif key in failed:
                target = ModelStatus.FAILED
            elif status is ModelStatus.DEPLOYED:
                target = ModelStatus.RETIRED
            else:
                continue
            if target is status or (key in failed and target not in TRANSITIONS[status]):
                continue
            if target is ModelStatus.DEPLOYED and target not in TRANSITIONS[status]:
                raise ConflictError(
                    f"{key[0]}:{key[1]} is {status.value.upper()} and cannot be served"
                )
            self.registry.set_status_in(session, row, target, reason, actor)

    def revision(
        self, session: Session, config: DeploymentConfig, status: str, reason: str, actor
    ) -> None:
        session.add(
            DeploymentRevisionRow(
                deployment_id=config.deployment_id, model_id=config.model_id,
                version=config.version, status=status, reason=reason,
                actor=actor or self.audit.default_actor, at=utcnow(),
            )
        )  # fmt: skip

    @staticmethod
    def close_active_revision(session: Session, deployment_id: str, status: str) -> None:
        for rev in session.exec(
            select(DeploymentRevisionRow).where(
                DeploymentRevisionRow.deployment_id == deployment_id,
                DeploymentRevisionRow.status == "active",
            )
        ).all():
            rev.status = status
            session.add(rev)

    @staticmethod
    def bump(row: DeploymentRow, reason: str) -> None:
        """A change every serving process must reconcile (it compares generations)."""
        row.generation += 1
        row.reason, row.updated_at = reason, utcnow()

    # ---- deployment transitions ----------------------------------------------------------

    def deploy(self, config: DeploymentConfig, actor: str | None = None) -> int:
        """The deployment serves ``config`` from now on; returns its new generation."""
        with self.transition("deploy") as session:
            row = session.exec(
                select(DeploymentRow)
                .where(DeploymentRow.deployment_id == config.deployment_id)
                .with_for_update()
            ).first()
            if row is not None and self.active_canary_in(session, config.deployment_id):
                raise ConflictError(
                    f"a canary is running on {config.deployment_id}; promote or abort it first"
                )
            before = info_from_row(row).to_dict() if row else None
            was = versions_of(row.model_id, row.version, row.config) if row else []
            serving_before = row.version if row and row.status == "running" else None
            if row is None:
                row = DeploymentRow(
                    deployment_id=config.deployment_id, model_id=config.model_id,
                    version=config.version, environment=config.environment,
                    status="running", generation=0,
                )  # fmt: skip
            self.close_active_revision(session, config.deployment_id, "replaced")
            row.model_id, row.version = config.model_id, config.version
            row.environment, row.config = config.environment, config.to_dict()
            row.status, row.health = "running", "healthy"
            self.bump(row, "deployed")
            session.add(row)
            self.revision(session, config, "active", "deployed", actor)
            ref = config.serving_ref
            self.sync_registry(
                session, [*versions_of(config.model_id, config.version, row.config), *was],
                f"deployed as {config.deployment_id}" if not was else f"replaced by {ref}",
                actor,
            )  # fmt: skip
            self.audit.record(
                session, "deployment.deploy", "deployment", config.deployment_id,
                before=before, after=info_from_row(row).to_dict(), actor=actor,
            )  # fmt: skip
            emit(
                "deployment.deployed",
                f"{config.deployment_id} now serves {ref}"
                + (f" (was {serving_before})" if serving_before else ""),
                source=config.deployment_id,
                data={"model_version": ref, "previous_version": serving_before},
                session=session,
            )
            return row.generation

    def record_failed_attempt(
        self, config: DeploymentConfig, ref: str, reason: str, actor: str | None = None
    ) -> None:
        """A version that failed its checks before serving: FAILED unless something serves it."""
        with self.transition("failed_attempt") as session:
            self.revision(session, config, "failed", reason, actor)
            self.sync_registry(
                session, [split_ref(ref)], reason[:500], actor, failed=[split_ref(ref)]
            )
            self.audit.record(
                session, "deployment.failed", "deployment", config.deployment_id,
                after={"model_version": ref}, detail=reason, actor=actor,
            )  # fmt: skip
            emit(
                "deployment.failed",
                f"deploying {ref} as {config.deployment_id} failed: {reason}",
                source=config.deployment_id,
                severity="critical",
                data={"model_version": ref, "reason": reason},
                session=session,
            )

    def undeploy(self, deployment_id: str, reason: str = "", actor: str | None = None) -> None:
        """Stop serving (a running canary ends with it); versions nobody serves are RETIRED."""
        with self.transition("undeploy") as session:
            row = self.row(session, deployment_id, lock=True)
            if row.status != "running":
                raise ConflictError(f"deployment {deployment_id!r} is already {row.status}")
            before = info_from_row(row).to_dict()
            touched = versions_of(row.model_id, row.version, row.config)
            touched += self.end_canary_in(session, deployment_id, f"undeployed: {reason}", actor)
            self.close_active_revision(session, deployment_id, "stopped")
            row.status = "stopped"
            self.bump(row, reason or "undeployed")
            session.add(row)
            self.sync_registry(session, touched, f"undeployed from {deployment_id}", actor)
            self.audit.record(
                session, "deployment.undeploy", "deployment", deployment_id,
                before=before, after=info_from_row(row).to_dict(), detail=reason, actor=actor,
            )  # fmt: skip
            emit(
                "deployment.undeployed",
                f"{deployment_id} stopped serving {row.model_id}:{row.version}",
                source=deployment_id,
                session=session,
            )

    def rollback(
        self,
        deployment_id: str,
        *,
        expected_generation: int,
        target: Revision,
        config: DeploymentConfig,
        reason: str,
        failed: bool = False,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> int:
        """Serve ``target`` again, compare-and-set on the generation the caller looked at (so
        two rollbacks never go two versions back); returns the new generation."""
        with self.transition("rollback") as session:
            row = self.row(session, deployment_id, lock=True)
            if row.status != "running":
                raise ConflictError(f"deployment {deployment_id!r} is {row.status}, not running")
            if row.generation != expected_generation:
                raise ConflictError(
                    f"deployment {deployment_id!r} changed while rolling back (now "
                    f"{row.model_id}:{row.version}); nothing was done"
                )
            current = info_from_row(row)
            left = versions_of(row.model_id, row.version, row.config)
            touched = left + self.end_canary_in(
                session, deployment_id, f"rollback: {reason}", actor
            )
            self.close_active_revision(session, deployment_id, "rolled_back")
            # Used up: the next rollback goes further back, never forward to what was left.
            restored = session.get(DeploymentRevisionRow, target.id)
            restored.status = "restored"
            session.add(restored)
            row.model_id, row.version, row.config = (
                target.model_id,
                target.version,
                config.to_dict(),
            )
            row.health = "healthy"
            self.bump(row, f"rolled back: {reason}")
            session.add(row)
            self.revision(session, config, "active", f"rollback: {reason}", actor)
            self.sync_registry(
                session, [(target.model_id, target.version), *touched],
                f"rolled back: {reason}", actor, failed=left if failed else (),
            )  # fmt: skip
            self.audit.record(
                session, "deployment.rollback", "deployment", deployment_id,
                before=current.to_dict(), after=info_from_row(row).to_dict(),
                detail=reason, actor=actor,
            )  # fmt: skip
            emit(
                "deployment.rolled_back",
                f"{deployment_id} rolled back from {current.model_ref} to "
                f"{config.model_ref}: {reason}",
                source=deployment_id,
                severity="warning",
                data={"from": current.model_ref, "to": config.model_ref,
                      "evidence": evidence or {}},
                session=session,
            )  # fmt: skip
            return row.generation

    def set_health(self, deployment_id: str, health: str) -> None:
        with self.transition("health") as session:
            row = session.get(DeploymentRow, deployment_id)
            if row is not None and row.health != health:
                row.health, row.updated_at = health, utcnow()
                session.add(row)

    # ---- shared with the canary transitions ----------------------------------------------

    def end_canary_in(
        self, session: Session, deployment_id: str, reason: str, actor: str | None
    ) -> list[VersionKey]:
        """End a running canary because its deployment changes; returns its versions, for the
        caller's registry sync (the caller's transaction commits it)."""
        canary = self.active_canary_in(session, deployment_id, lock=True)
        if canary is None:
            return []
        end_canary(session, canary, "aborted", reason, weight=0.0)
        self.set_canary_revision(session, deployment_id, "aborted", f"canary aborted: {reason}")
        self.audit.record(
            session, "canary.abort", "deployment", deployment_id,
            after={"canary": canary.canary_ref, "state": canary.state}, detail=reason,
            actor=actor,
        )  # fmt: skip
        emit(
            "canary.aborted",
            f"{deployment_id}: canary {canary.canary_ref} ended: {reason}",
            source=deployment_id,
            severity="warning",
            data={"canary_id": canary.id, "canary": canary.canary_ref},
            session=session,
        )
        return versions_of(canary.model_id, canary.version, canary.config)

    @staticmethod
    def set_canary_revision(session: Session, deployment_id: str, status: str, reason: str):
        rev = session.exec(
            select(DeploymentRevisionRow)
            .where(
                DeploymentRevisionRow.deployment_id == deployment_id,
                DeploymentRevisionRow.status == "canary",
            )
            .order_by(col(DeploymentRevisionRow.id).desc())
        ).first()
        if rev is not None:
            rev.status, rev.reason = status, reason
            session.add(rev)


def end_canary(session: Session, row: CanaryRow, state: str, reason: str, weight: float) -> None:
    """Close a canary row (promoted or aborted) and drop its unjudged observations."""
    row.state, row.reason, row.weight = state, reason, weight
    row.ended_at = row.updated_at = utcnow()
    session.add(row)
    session.exec(delete(CanarySampleRow).where(CanarySampleRow.canary_id == row.id))
