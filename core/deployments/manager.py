"""``DeploymentManager``: the front door to deploying, rolling back and serving.

The database holds the desired state (which version each deployment serves); every serving
process reconciles its runtimes to it, so ``nightscan deploy`` in one terminal changes what a
``nightscan serve`` in another answers with, and a restarted server restores its deployments.

The parts, none of which reaches back into this class:
* ``DeploymentStore`` / ``CanaryStore`` (store.py, canary_store.py): the state machine, one
  transaction per transition, registry statuses included;
* ``LocalServing`` (serving.py): what this process serves, its lock, the one get-or-load path;
* ``CanaryController`` (canary.py), ``Predictor`` (predictor.py), ``Supervisor`` (supervisor.py).

A deploy is checked in the deploying process first (checksum, load, warm-up, health probe), so a
broken version is refused before anything serving changes; then one transaction switches the
desired state, and the runtimes follow it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from core.context import Context, get_context
from core.deployments.canary import CanaryController
from core.deployments.canary_store import CanaryStore
from core.deployments.config import DeploymentConfig
from core.deployments.info import DeploymentInfo, Revision
from core.deployments.invariants import check_and_repair
from core.deployments.loader import ModelLoader
from core.deployments.predictor import Predictor
from core.deployments.served import ServedDeployment, ServedModel
from core.deployments.serving import LocalServing, ServingSnapshot
from core.deployments.snapshots import SnapshotStore
from core.deployments.store import DeploymentStore
from core.deployments.supervisor import Supervisor
from core.deployments.tracker import PerformanceMetrics, PerformanceTracker, arm_key
from core.errors import ConflictError, DeploymentFailedError, NightScanError
from core.lifecycle import TRANSITIONS, ModelStatus
from core.monitoring.metrics import LiveGauges, ServingMetrics, experiment_confidences
from core.monitoring.quality_gauges import QualityGauges
from core.registry import ModelRegistry, get_model_registry

log = logging.getLogger(__name__)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, NightScanError) else f"{type(exc).__name__}: {exc}"


class DeploymentManager:
    def __init__(self, ctx: Context, clock=time.time) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.registry: ModelRegistry = get_model_registry()
        self.store = DeploymentStore(ctx.db, self.registry, ctx.audit)
        self.violations = self._check_invariants()
        self.performance_tracker = PerformanceTracker()
        self.snapshots = SnapshotStore(ctx.db)
        self.performance_tracker.set_remote_sources(
            self.snapshots.latest, self.snapshots.history, self.snapshots.by_process
        )
        self.metrics = ServingMetrics()
        self.metrics.add_collector(LiveGauges(self, experiment_confidences))
        self.metrics.add_collector(QualityGauges(self, ctx.db))
        self.loader = ModelLoader(self.registry, on_batch=self.metrics.batch_hook)
        self.serving = LocalServing(self.store, self.registry, self.loader, self._track)
        self.canaries = CanaryController(CanaryStore(self.store), self.serving, clock)
        self.predictor = Predictor(
            ctx.db, self.serving, self.performance_tracker, self.canaries, self.metrics
        )
        self.supervisor = Supervisor(
            self.store, self.serving, self.performance_tracker, self.canaries, self.snapshots,
            monitor=self,
        )  # fmt: skip

    def _check_invariants(self) -> list:
        """An older database may break the invariants (invariants.py): report and repair them.
        Never a reason not to start: a failed check (another process repairing at the same
        moment, say) is logged and the next start checks again."""
        try:
            return check_and_repair(self.store)
        except Exception:
            log.exception("the deployment invariant check failed")
            return []

    def _track(self, deployment_id: str, served: ServedModel) -> None:
        self.performance_tracker.set_gauges(
            deployment_id,
            lambda: {
                "queue_depth": served.runtime.queue_depth,
                "batch_size_distribution": served.runtime.batch_size_counts(),
            },
        )

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

    @property
    def pool(self) -> ServingSnapshot:
        """What this process serves now (a frozen snapshot)."""
        return self.serving.snapshot()

    def served_deployments(self) -> Mapping[str, ServedDeployment]:
        return self.serving.deployments

    def current_metrics(
        self, deployment_id: str, model_version: str | None = None, window_seconds: float = 60.0
    ) -> PerformanceMetrics | None:
        key = deployment_id if model_version is None else arm_key(deployment_id, model_version)
        return self.performance_tracker.get_current_metrics(key, window_seconds)

    def get_deployment(self, deployment_id: str) -> DeploymentInfo:
        return self.store.get(deployment_id)

    def list_deployments(self, include_stopped: bool = False) -> list[DeploymentInfo]:
        return self.store.list(include_stopped)

    def revisions(self, deployment_id: str) -> list[Revision]:
        return self.store.revisions(deployment_id)

    def get_status(self, deployment_id: str) -> dict[str, Any]:
        info = self.get_deployment(deployment_id)
        metrics = self.performance_tracker.get_current_metrics(deployment_id)
        local = self.serving.model_for(deployment_id)
        status = info.to_dict()
        status["metrics"] = metrics.to_dict() if metrics else None
        status["served_here"] = local is not None
        if local is not None:
            dep, served = local
            status["replicas"] = served.runtime.replicas
            status["queue_depth"] = served.runtime.queue_depth
            status["device"] = served.device
            status["consecutive_health_failures"] = dep.consecutive_failures
        status["canary"] = self.canaries.active(deployment_id)
        status["revisions"] = [
            {"version": r.version, "status": r.status, "reason": r.reason, "at": r.at.isoformat()}
            for r in self.revisions(deployment_id)
        ]
        return status

    # ---- control plane -------------------------------------------------------------------

    def deploy_model(self, config: DeploymentConfig, actor: str | None = None) -> bool:
        """Verify, load, warm up, probe, then switch in one transaction. Returns True; raises
        DeploymentFailedError (previous version still serving) when the version is unfit."""
        config.validate()
        if config.ensemble:  # members exist and share one label set, before anything loads
            self.serving.ensembles.check(config)
        meta = self.registry.get_model(config.model_id, config.version)
        if meta.status is not ModelStatus.DEPLOYED and (
            ModelStatus.DEPLOYED not in TRANSITIONS[meta.status]
        ):
            raise ConflictError(
                f"{meta.ref} is {meta.status.value.upper()}; only VALIDATION, TESTING, RETIRED "
                "or DEPLOYED versions can be deployed"
            )
        if config.canary.quality_metrics:  # judged by this deployment's later canaries too
            from core.quality.names import check_classes, check_quality_metrics

            metrics = check_quality_metrics(config.canary.quality_metrics, "canary.quality_metrics")
            check_classes(metrics, meta.labels, f"canary.quality_metrics of {meta.ref}")
        if self.canaries.intercepts(config):  # a canary beside the stable version (canary.py)
            return self.canaries.start(config, meta, actor)
        existing = self.store.list(include_stopped=True)
        before = next((d for d in existing if d.deployment_id == config.deployment_id), None)
        serving_before = before.version if before and before.status == "running" else None
        try:
            served = self.serving.load(meta, config, verify=True)
        except Exception as exc:
            reason = _reason(exc)
            self.store.record_failed_attempt(config, meta.ref, reason, actor)
            still = (
                f"{config.model_id}:{serving_before} keeps serving"
                if serving_before
                else "nothing was deployed"
            )
            raise DeploymentFailedError(
                f"deploying {meta.ref} as {config.deployment_id} failed: {reason}; {still}"
            ) from None
        try:
            generation = self.store.deploy(config, actor)
        except Exception:
            served.runtime.close(drain=False)
            raise
        self.serving.install(config, served, generation)
        return True

    def undeploy(self, deployment_id: str, reason: str = "", actor: str | None = None) -> None:
        """Stop serving; the version is RETIRED unless another deployment still serves it."""
        self.store.undeploy(deployment_id, reason, actor)
        self.serving.remove(deployment_id)

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
        current = self.get_deployment(deployment_id)
        if current.status != "running":
            raise ConflictError(f"deployment {deployment_id!r} is {current.status}, not running")
        target = self.store.rollback_target(deployment_id, current.version)
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
            served = self.serving.load(meta, config, verify=True)
        except Exception as exc:
            raise DeploymentFailedError(
                f"rollback of {deployment_id} to {meta.ref} failed: {exc}; "
                f"{current.model_ref} keeps serving"
            ) from None
        try:
            generation = self.store.rollback(
                deployment_id, expected_generation=current.generation, target=target,
                config=config, reason=reason, failed=failed, actor=actor, evidence=evidence,
            )  # fmt: skip
        except Exception:
            served.runtime.close(drain=False)
            raise
        self.serving.install(config, served, generation)  # the atomic switch
        return self.get_deployment(deployment_id)

    # ---- reconciliation and supervision --------------------------------------------------

    def reconcile(self) -> None:
        """Bring this process's runtimes to the database's desired state (restore on start)."""
        self.serving.reconcile()

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
        served = list(self.serving.deployments)
        self.serving.close()
        self.predictor.predictions.close()
        self.snapshots.maybe_persist(self.performance_tracker, served, force=True)
        try:
            self.canaries.observations.flush()
        except Exception:  # the database may be gone at exit; nothing else is at stake
            log.exception("could not flush the last canary observations")


def get_deployment_manager() -> DeploymentManager:
    return get_context().service("deployments", DeploymentManager)
