"""``DeploymentManager``: deploy, undeploy, roll back, and serve with dynamic batching.

The database holds the desired state (which version each deployment serves); every serving
process reconciles its runtimes to it, so ``nightscan deploy`` in one terminal changes what a
``nightscan serve`` in another answers with, and a restarted server restores its deployments.
A deploy is checked in the deploying process first (checksum, load, warm-up, health probe), so a
broken version is refused before anything serving changes.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import col, select

from core import events
from core.context import Context, get_context
from core.deployments.canary import CanaryController
from core.deployments.config import DeploymentConfig
from core.deployments.ensemble import EnsembleLoader
from core.deployments.info import DeploymentInfo, Revision, info_from_row
from core.deployments.loader import ModelLoader
from core.deployments.predictor import Predictor
from core.deployments.serving import ServedDeployment, ServedModel, ServingPool
from core.deployments.snapshots import SnapshotStore
from core.deployments.supervisor import Supervisor
from core.deployments.tracker import PerformanceTracker
from core.errors import (
    ConflictError,
    DeploymentFailedError,
    NightScanError,
    NotFoundError,
)
from core.lifecycle import TRANSITIONS, ModelStatus
from core.model_metadata import ModelMetadata
from core.monitoring.metrics import LiveGauges, ServingMetrics, experiment_confidences
from core.monitoring.quality_gauges import QualityGauges
from core.registry import ModelRegistry, get_model_registry
from data.deployment_tables import DeploymentRevisionRow, DeploymentRow
from data.types import utcnow

log = logging.getLogger(__name__)


class DeploymentManager:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.registry: ModelRegistry = get_model_registry()
        self.performance_tracker = PerformanceTracker()
        self.snapshots = SnapshotStore(ctx.db)
        self.performance_tracker.set_remote_sources(self.snapshots.latest, self.snapshots.history)
        self.pool = ServingPool()
        self.metrics = ServingMetrics()
        self.metrics.add_collector(LiveGauges(self, experiment_confidences))
        self.metrics.add_collector(QualityGauges(self))
        self.loader = ModelLoader(self.registry, on_batch=self.metrics.batch_hook)
        self.predictor = Predictor(self)
        self.supervisor = Supervisor(self)
        self.canaries = CanaryController(self)
        self.ensembles = EnsembleLoader(self)

    async def run_inference(
        self,
        audio_data: Any,
        request_id: str | None = None,
        experiment_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """The seed's call; see ``Predictor.run_inference`` for the options."""
        return await self.predictor.run_inference(audio_data, request_id, experiment_id, **options)

    def record_feedback(
        self, request_id: str, true_label: str, experiment_id: str | None = None
    ) -> dict[str, Any]:
        return self.predictor.record_feedback(request_id, true_label, experiment_id)

    # ---- queries -------------------------------------------------------------------------

    def _row(self, session, deployment_id: str) -> DeploymentRow:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id!r} does not exist")
        return row

    def get_deployment(self, deployment_id: str) -> DeploymentInfo:
        with self.db.session() as session:
            return info_from_row(self._row(session, deployment_id))

    def list_deployments(self, include_stopped: bool = False) -> list[DeploymentInfo]:
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

    def get_status(self, deployment_id: str) -> dict[str, Any]:
        info = self.get_deployment(deployment_id)
        metrics = self.performance_tracker.get_current_metrics(deployment_id)
        local = self.pool.model_for(deployment_id)
        status = info.to_dict()
        status["metrics"] = metrics.to_dict() if metrics else None
        status["served_here"] = local is not None
        if local is not None:
            dep, served = local
            status["replicas"] = served.runtime.replicas
            status["queue_depth"] = served.runtime.queue_depth
            status["device"] = served.device
            status["consecutive_health_failures"] = dep.consecutive_failures
        status["canary"] = (
            self.canaries.status(deployment_id) if self.canaries.active(deployment_id) else None
        )
        status["revisions"] = [
            {"version": r.version, "status": r.status, "reason": r.reason, "at": r.at.isoformat()}
            for r in self.revisions(deployment_id)
        ]
        return status

    # ---- control plane -------------------------------------------------------------------

    def deploy_model(self, config: DeploymentConfig, actor: str | None = None) -> bool:
        """Verify, load, warm up, probe, persist, then switch traffic. Returns True; raises
        DeploymentFailedError (previous version still serving) when the version is unfit."""
        config.validate()
        if config.ensemble:  # members exist and share one label set, before anything loads
            self.ensembles.check(config)
        meta = self.registry.get_model(config.model_id, config.version)
        if meta.status is not ModelStatus.DEPLOYED and (
            ModelStatus.DEPLOYED not in TRANSITIONS[meta.status]
        ):
            raise ConflictError(
                f"{meta.ref} is {meta.status.value.upper()}; only VALIDATION, TESTING, RETIRED "
                "or DEPLOYED versions can be deployed"
            )
        if self.canaries.intercepts(config):  # a canary beside the stable version (canary.py)
            return self.canaries.start(config, meta, actor)
        with self.db.session() as session:
            existing = session.get(DeploymentRow, config.deployment_id)
            serving_before = existing.version if existing and existing.status == "running" else None
        try:
            served = self._load(meta, config, verify=True)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, NightScanError) else f"{type(exc).__name__}: {exc}"
            self._record_failed_attempt(config, meta, reason, actor)
            still = (
                f"{config.model_id}:{serving_before} keeps serving"
                if serving_before
                else "nothing was deployed"
            )
            raise DeploymentFailedError(
                f"deploying {meta.ref} as {config.deployment_id} failed: {reason}; {still}"
            ) from None

        with self.db.write() as session:
            row = session.get(DeploymentRow, config.deployment_id)
            before = info_from_row(row).to_dict() if row else None
            if row is None:
                row = DeploymentRow(
                    deployment_id=config.deployment_id,
                    model_id=config.model_id,
                    version=config.version,
                    environment=config.environment,
                    status="running",
                    generation=0,
                )
            self._close_active_revision(session, config.deployment_id, "replaced")
            row.model_id, row.version = config.model_id, config.version
            row.environment, row.config = config.environment, config.to_dict()
            row.status, row.health, row.reason = "running", "healthy", "deployed"
            row.generation += 1
            row.updated_at = utcnow()
            session.add(row)
            session.add(self._revision(config, "active", "deployed", actor))
            after = info_from_row(row).to_dict()
            self.ctx.audit.record(
                session, "deployment.deploy", "deployment", config.deployment_id,
                before=before, after=after, actor=actor,
            )  # fmt: skip
            events.emit(
                "deployment.deployed",
                f"{config.deployment_id} now serves {meta.ref}"
                + (f" (was {serving_before})" if serving_before else ""),
                source=config.deployment_id,
                data={"model_version": meta.ref, "previous_version": serving_before},
                session=session,
            )
            generation = row.generation
        if meta.status is not ModelStatus.DEPLOYED:
            self.registry.update_status(
                meta.model_id, meta.version, ModelStatus.DEPLOYED,
                reason=f"deployed as {config.deployment_id}", actor=actor,
            )  # fmt: skip
        if serving_before and serving_before != config.version:
            self._retire_if_unused(config.model_id, serving_before, f"replaced by {meta.ref}")
        self._install(config, served, generation)
        return True

    def _load(self, meta: ModelMetadata, config: DeploymentConfig, verify: bool = False):
        """A version's runtime, or an ensemble's over its members' runtimes."""
        if config.ensemble:
            return self.ensembles.load(config, verify=verify)
        return self.loader.verified_load(meta, config) if verify else self.loader.load(meta, config)

    def _install(
        self, config: DeploymentConfig, served: ServedModel, generation: int, canary=None
    ) -> None:
        with self.pool.lock:
            existing = self.pool.models.get(served.model_ref)
        if existing is not None and existing.runtime is not served.runtime:
            served.runtime.close(drain=False)  # already serving that version here: reuse it
            served = existing
        self.pool.install(
            ServedDeployment(config, served.model_ref, generation, canary=canary), served
        )
        self.performance_tracker.set_gauges(
            config.deployment_id,
            lambda: {
                "queue_depth": served.runtime.queue_depth,
                "batch_size_distribution": served.runtime.batch_size_counts(),
            },
        )

    def _revision(self, config, status: str, reason: str, actor: str | None):
        return DeploymentRevisionRow(
            deployment_id=config.deployment_id,
            model_id=config.model_id,
            version=config.version,
            status=status,
            reason=reason,
            actor=actor or self.ctx.settings.actor,
            at=utcnow(),
        )

    @staticmethod
    def _close_active_revision(session, deployment_id: str, status: str) -> None:
        for rev in session.exec(
            select(DeploymentRevisionRow).where(
                DeploymentRevisionRow.deployment_id == deployment_id,
                DeploymentRevisionRow.status == "active",
            )
        ).all():
            rev.status = status
            session.add(rev)

    def _record_failed_attempt(self, config, meta: ModelMetadata, reason: str, actor) -> None:
        with self.db.write() as session:
            session.add(self._revision(config, "failed", reason, actor))
            self.ctx.audit.record(
                session, "deployment.failed", "deployment", config.deployment_id,
                after={"model_version": meta.ref}, detail=reason, actor=actor,
            )  # fmt: skip
            events.emit(
                "deployment.failed",
                f"deploying {meta.ref} as {config.deployment_id} failed: {reason}",
                source=config.deployment_id,
                severity="critical",
                data={"model_version": meta.ref, "reason": reason},
                session=session,
            )
        current = self.registry.get_model(meta.model_id, meta.version).status
        if ModelStatus.FAILED in TRANSITIONS[current] and not self._used_elsewhere(
            meta.model_id, meta.version, exclude=None
        ):
            self.registry.update_status(
                meta.model_id, meta.version, ModelStatus.FAILED, reason=reason[:500], actor=actor
            )

    def _used_elsewhere(self, model_id: str, version: str, exclude: str | None) -> bool:
        query = select(DeploymentRow.deployment_id).where(
            DeploymentRow.model_id == model_id,
            DeploymentRow.version == version,
            DeploymentRow.status == "running",
        )
        with self.db.session() as session:
            return any(d != exclude for d in session.exec(query).all())

    def _retire_if_unused(self, model_id: str, version: str, reason: str, failed=False) -> None:
        if self._used_elsewhere(model_id, version, exclude=None):
            return
        target = ModelStatus.FAILED if failed else ModelStatus.RETIRED
        current = self.registry.get_model(model_id, version).status
        if target in TRANSITIONS[current]:
            self.registry.update_status(model_id, version, target, reason=reason)

    def undeploy(self, deployment_id: str, reason: str = "", actor: str | None = None) -> None:
        """Stop serving; the version is RETIRED unless another deployment still serves it."""
        self.canaries.end_for(deployment_id, f"undeployed: {reason or 'undeployed'}", actor)
        with self.db.write() as session:
            row = self._row(session, deployment_id)
            if row.status != "running":
                raise ConflictError(f"deployment {deployment_id!r} is already {row.status}")
            before = info_from_row(row).to_dict()
            self._close_active_revision(session, deployment_id, "stopped")
            row.status, row.reason = "stopped", reason or "undeployed"
            row.generation += 1
            row.updated_at = utcnow()
            session.add(row)
            self.ctx.audit.record(
                session, "deployment.undeploy", "deployment", deployment_id,
                before=before, after=info_from_row(row).to_dict(), detail=reason, actor=actor,
            )  # fmt: skip
            events.emit(
                "deployment.undeployed",
                f"{deployment_id} stopped serving {row.model_id}:{row.version}",
                source=deployment_id,
                session=session,
            )
            model_id, version = row.model_id, row.version
        self.pool.remove(deployment_id)
        self._retire_if_unused(model_id, version, f"undeployed from {deployment_id}")

    def rollback_deployment(
        self,
        deployment_id: str,
        reason: str = "manual rollback",
        *,
        failed: bool = False,
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> DeploymentInfo:
        """Switch to the last version that served this deployment healthily. The switch is
        atomic for requests: queued ones finish on the old version, new ones use the previous.
        ``failed=True`` (automatic rollbacks) marks the abandoned version FAILED."""
        self.canaries.end_for(deployment_id, f"rollback: {reason}", actor)
        with self.db.session() as session:
            row = self._row(session, deployment_id)
            if row.status != "running":
                raise ConflictError(f"deployment {deployment_id!r} is {row.status}, not running")
            current = info_from_row(row)
        target = next(
            (
                r
                for r in reversed(self.revisions(deployment_id))
                if r.status == "replaced" and r.version != current.version
            ),
            None,
        )
        if target is None:
            raise ConflictError(
                f"deployment {deployment_id!r} has no earlier healthy version to roll back to"
            )
        config = DeploymentConfig.from_dict(
            {**current.config.to_dict(), "model_id": target.model_id, "version": target.version,
             "ensemble": None}  # revisions keep the version only: roll back to it alone
        )  # fmt: skip
        meta = self.registry.get_model(target.model_id, target.version)
        try:
            served = self._load(meta, config, verify=True)
        except Exception as exc:
            raise DeploymentFailedError(
                f"rollback of {deployment_id} to {meta.ref} failed: {exc}; "
                f"{current.model_ref} keeps serving"
            ) from None
        with self.db.write() as session:
            row = self._row(session, deployment_id)
            if row.generation != current.generation:
                # Compare-and-set: another process (or a health check) changed the deployment
                # since we looked; rolling back again would go one version too far.
                served.runtime.close(drain=False)
                raise ConflictError(
                    f"deployment {deployment_id!r} changed while rolling back (now "
                    f"{row.model_id}:{row.version}); nothing was done"
                )
            self._close_active_revision(session, deployment_id, "rolled_back")
            # Used up: the next rollback goes further back, never forward to what was left.
            restored = session.get(DeploymentRevisionRow, target.id)
            restored.status = "restored"
            session.add(restored)
            row.version, row.config = target.version, config.to_dict()
            row.health, row.reason = "healthy", f"rolled back: {reason}"
            row.generation += 1
            row.updated_at = utcnow()
            session.add(row)
            session.add(self._revision(config, "active", f"rollback: {reason}", actor))
            self.ctx.audit.record(
                session, "deployment.rollback", "deployment", deployment_id,
                before=current.to_dict(), after=info_from_row(row).to_dict(),
                detail=reason, actor=actor,
            )  # fmt: skip
            events.emit(
                "deployment.rolled_back",
                f"{deployment_id} rolled back from {current.model_ref} to {meta.ref}: {reason}",
                source=deployment_id,
                severity="warning",
                data={"from": current.model_ref, "to": meta.ref, "evidence": evidence or {}},
                session=session,
            )
            generation = row.generation
        self._install(config, served, generation)  # the atomic switch
        if meta.status is not ModelStatus.DEPLOYED:
            self.registry.update_status(
                meta.model_id, meta.version, ModelStatus.DEPLOYED, reason=f"rollback: {reason}"
            )
        self._retire_if_unused(
            current.model_id, current.version, f"rolled back: {reason}", failed=failed
        )
        return self.get_deployment(deployment_id)

    # ---- reconciliation ------------------------------------------------------------------

    def _reconcile_one(self, info: DeploymentInfo) -> tuple[ServedDeployment, ServedModel]:
        meta = self.registry.get_model(info.model_id, info.version)
        with self.pool.lock:
            served = self.pool.models.get(info.config.serving_ref)
        if served is None:
            served = self._load(meta, info.config)
        canary = self.canaries.route_for(info)  # a running canary's share (canary.py)
        self._install(info.config, served, info.generation, canary)
        return self.pool.model_for(info.deployment_id)

    def reconcile(self) -> None:
        """Bring this process's runtimes to the database's desired state (restore on start)."""
        wanted = {d.deployment_id: d for d in self.list_deployments()}
        with self.pool.lock:
            local = {k: v.generation for k, v in self.pool.deployments.items()}
        for deployment_id in set(local) - set(wanted):
            self.pool.remove(deployment_id)
        for deployment_id, info in wanted.items():
            if local.get(deployment_id) == info.generation:
                continue
            try:
                self._reconcile_one(info)
            except Exception as exc:  # one broken deployment must not stop the others
                log.warning("cannot serve %s: %s", deployment_id, exc)
                events.emit(
                    "deployment.restore_failed",
                    f"{deployment_id} ({info.model_ref}) cannot be served here: {exc}",
                    source=deployment_id,
                    severity="critical",
                )

    # ---- supervision (health checks, autoscaling, snapshots) ----------------------------

    def health(self, deployment_id: str) -> dict[str, Any]:
        """Probe the deployment with a real inference now (loading it here if needed)."""
        return self.supervisor.health(deployment_id)

    def tick(self) -> None:
        self.supervisor.tick()

    def start_background(self, interval_s: float = 1.0) -> None:
        self.supervisor.start(interval_s)

    def stop_background(self) -> None:
        self.supervisor.stop()

    def close(self) -> None:
        """Graceful: stop the loop, finish queued requests, then write what they were counted
        as (the last snapshot, and the canary tallies the judge has not seen yet)."""
        self.stop_background()
        served = list(self.pool.deployments)
        self.pool.close()
        self.predictor.predictions.close()
        self.snapshots.maybe_persist(self.performance_tracker, served, force=True)
        try:
            self.canaries.observations.flush()
        except Exception:  # the database may be gone at exit; nothing else is at stake
            log.exception("could not flush the last canary observations")


def get_deployment_manager() -> DeploymentManager:
    return get_context().service("deployments", DeploymentManager)
