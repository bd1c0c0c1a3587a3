"""``DeploymentManager``: deploy, undeploy, roll back, and serve with dynamic batching.

The database holds the desired state (which version each deployment serves); every serving
process reconciles its runtimes to it, so ``nightscan deploy`` in one terminal changes what a
``nightscan serve`` in another answers with, and a restarted server restores its deployments.
A deploy is checked in the deploying process first (checksum, load, warm-up, health probe), so a
broken version is refused before anything serving changes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import col, select

from core import events
from core.context import Context, get_context
from core.deployments.config import DeploymentConfig
from core.deployments.probe import probe_runtime
from core.deployments.serving import ServedDeployment, ServedModel, ServingPool
from core.deployments.snapshots import SnapshotStore
from core.deployments.tracker import PerformanceTracker
from core.errors import (
    ConflictError,
    DeploymentFailedError,
    InferenceFailedError,
    NightScanError,
    NotFoundError,
    OverloadedError,
    PayloadTooLargeError,
    ValidationError,
)
from core.lifecycle import TRANSITIONS, ModelStatus
from core.model_metadata import ModelMetadata
from core.registry import ModelRegistry, get_model_registry
from data.deployment_tables import DeploymentRevisionRow, DeploymentRow
from data.types import utcnow

if TYPE_CHECKING:
    from inference.model_cache import ModelCache

log = logging.getLogger(__name__)
RECENT_REQUESTS = 100_000  # how many predictions feedback can still be joined to
SAMPLE_RATE = 22_050


@dataclass(frozen=True)
class DeploymentInfo:
    deployment_id: str
    model_id: str
    version: str
    environment: str
    status: str
    health: str
    config: DeploymentConfig
    generation: int
    reason: str
    created_at: datetime
    updated_at: datetime

    @property
    def model_ref(self) -> str:
        return f"{self.model_id}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "model_id": self.model_id,
            "version": self.version,
            "model_version": self.model_ref,
            "environment": self.environment,
            "status": self.status,
            "health": self.health,
            "traffic_percentage": self.config.traffic_percentage,
            "config": self.config.to_dict(),
            "generation": self.generation,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Revision:
    id: int
    deployment_id: str
    model_id: str
    version: str
    status: str
    reason: str
    actor: str
    at: datetime


def _info(row: DeploymentRow) -> DeploymentInfo:
    return DeploymentInfo(
        deployment_id=row.deployment_id,
        model_id=row.model_id,
        version=row.version,
        environment=row.environment,
        status=row.status,
        health=row.health,
        config=DeploymentConfig.from_dict(row.config),
        generation=row.generation,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class DeploymentManager:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.registry: ModelRegistry = get_model_registry()
        self.performance_tracker = PerformanceTracker()
        self.snapshots = SnapshotStore(ctx.db)
        self.performance_tracker.set_remote_sources(self.snapshots.latest, self.snapshots.history)
        self.pool = ServingPool()
        self._cache: ModelCache | None = None
        self._load_lock = threading.Lock()
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._experiment_metrics: dict[str, set[str]] = {}
        self._loop_thread: threading.Thread | None = None
        self._loop_stop = threading.Event()

    # ---- loading -------------------------------------------------------------------------

    def _model_cache(self) -> ModelCache:
        from inference.model_cache import ModelCache

        if self._cache is None:
            self._cache = ModelCache(budget_bytes=2 * 1024**3)
        return self._cache

    def _load_served(self, meta: ModelMetadata, config: DeploymentConfig) -> ServedModel:
        """Verified weights -> module -> batched runtime, warmed up."""
        from inference.features import FeatureConfig
        from inference.runtime import BatchedRuntime, BatchingConfig, configure_torch_threads

        labels = meta.labels
        if len(labels) < 2:
            raise ValidationError(f"{meta.ref} has no labels in its training_config")
        with self._load_lock:
            module = self._model_cache().get_or_load(
                (meta.model_id, meta.version),
                lambda: self.registry.load_model(meta.model_id, meta.version),
            )
        device = self._device(config)
        configure_torch_threads(max(1, int(config.resources["cpu"])))
        batching = config.batching
        runtime = BatchedRuntime(
            module,
            BatchingConfig(
                max_batch_size=int(batching["max_batch_size"]),
                max_batch_delay_ms=float(batching["max_batch_delay_ms"]),
                queue_capacity=int(batching["queue_capacity"]),
                replicas=int(config.scaling["min_replicas"]),
            ),
            device=device,
            name=meta.ref,
        )
        features = FeatureConfig.from_dict(meta.training_config.get("features") or {})
        served = ServedModel(meta.ref, labels, features.clip_samples, runtime, device)
        try:
            runtime.infer_now(np.zeros((1, served.clip_samples), dtype=np.float32))  # warm-up
        except Exception:
            runtime.close(drain=False)
            raise
        return served

    def _device(self, config: DeploymentConfig) -> str:
        if int(config.resources.get("gpu", 0)) <= 0:
            return "cpu"
        import torch

        if torch.cuda.is_available():
            return "cuda"
        events.emit(
            "deployment.gpu_unavailable",
            f"{config.deployment_id} asked for {config.resources['gpu']} GPU(s) but CUDA is not "
            "available here; serving on the CPU",
            source=config.deployment_id,
            severity="warning",
        )
        return "cpu"

    def _verified_load(self, meta: ModelMetadata, config: DeploymentConfig) -> ServedModel:
        """Load, warm up and probe; any failure closes what was started and raises."""
        served = self._load_served(meta, config)
        result = probe_runtime(served, timeout_s=float(config.health_check["timeout"]))
        if not result.ok:
            served.runtime.close(drain=False)
            raise RuntimeError(f"health check failed: {result.detail}")
        return served

    # ---- queries -------------------------------------------------------------------------

    def _row(self, session, deployment_id: str) -> DeploymentRow:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id!r} does not exist")
        return row

    def get_deployment(self, deployment_id: str) -> DeploymentInfo:
        with self.db.session() as session:
            return _info(self._row(session, deployment_id))

    def list_deployments(self, include_stopped: bool = False) -> list[DeploymentInfo]:
        query = select(DeploymentRow).order_by(col(DeploymentRow.deployment_id))
        if not include_stopped:
            query = query.where(DeploymentRow.status == "running")
        with self.db.session() as session:
            return [_info(r) for r in session.exec(query).all()]

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
        meta = self.registry.get_model(config.model_id, config.version)
        if meta.status is not ModelStatus.DEPLOYED and (
            ModelStatus.DEPLOYED not in TRANSITIONS[meta.status]
        ):
            raise ConflictError(
                f"{meta.ref} is {meta.status.value.upper()}; only VALIDATION, TESTING, RETIRED "
                "or DEPLOYED versions can be deployed"
            )
        with self.db.session() as session:
            existing = session.get(DeploymentRow, config.deployment_id)
            serving_before = existing.version if existing and existing.status == "running" else None
        try:
            served = self._verified_load(meta, config)
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
            before = _info(row).to_dict() if row else None
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
            after = _info(row).to_dict()
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

    def _install(self, config: DeploymentConfig, served: ServedModel, generation: int) -> None:
        with self.pool.lock:
            existing = self.pool.models.get(served.model_ref)
        if existing is not None and existing.runtime is not served.runtime:
            served.runtime.close(drain=False)  # already serving that version here: reuse it
            served = existing
        self.pool.install(ServedDeployment(config, served.model_ref, generation), served)
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
        with self.db.write() as session:
            row = self._row(session, deployment_id)
            if row.status != "running":
                raise ConflictError(f"deployment {deployment_id!r} is already {row.status}")
            before = _info(row).to_dict()
            self._close_active_revision(session, deployment_id, "stopped")
            row.status, row.reason = "stopped", reason or "undeployed"
            row.generation += 1
            row.updated_at = utcnow()
            session.add(row)
            self.ctx.audit.record(
                session, "deployment.undeploy", "deployment", deployment_id,
                before=before, after=_info(row).to_dict(), detail=reason, actor=actor,
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
        with self.db.session() as session:
            row = self._row(session, deployment_id)
            if row.status != "running":
                raise ConflictError(f"deployment {deployment_id!r} is {row.status}, not running")
            current = _info(row)
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
        config = DeploymentConfig.from_dict({**current.config.to_dict(), "version": target.version})
        meta = self.registry.get_model(target.model_id, target.version)
        try:
            served = self._verified_load(meta, config)
        except Exception as exc:
            raise DeploymentFailedError(
                f"rollback of {deployment_id} to {meta.ref} failed: {exc}; "
                f"{current.model_ref} keeps serving"
            ) from None
        with self.db.write() as session:
            row = self._row(session, deployment_id)
            self._close_active_revision(session, deployment_id, "rolled_back")
            row.version, row.config = target.version, config.to_dict()
            row.health, row.reason = "healthy", f"rolled back: {reason}"
            row.generation += 1
            row.updated_at = utcnow()
            session.add(row)
            session.add(self._revision(config, "active", f"rollback: {reason}", actor))
            self.ctx.audit.record(
                session, "deployment.rollback", "deployment", deployment_id,
                before=current.to_dict(), after=_info(row).to_dict(),
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

    # ---- health --------------------------------------------------------------------------

    def health(self, deployment_id: str) -> dict[str, Any]:
        """Probe the deployment with a real inference now (loading it here if needed)."""
        info = self.get_deployment(deployment_id)
        if info.status != "running":
            return {
                "deployment_id": deployment_id,
                "healthy": False,
                "status": info.status,
                "detail": f"deployment is {info.status}",
            }
        local = self.pool.model_for(deployment_id) or self._reconcile_one(info)
        dep, served = local
        result = probe_runtime(served, timeout_s=float(info.config.health_check["timeout"]))
        self._note_probe(dep, info, result.ok, result.detail)
        return {
            "deployment_id": deployment_id,
            "model_version": info.model_ref,
            "healthy": result.ok,
            "status": info.status,
            "latency_ms": round(result.latency_s * 1000, 3),
            "detail": result.detail,
            "consecutive_failures": dep.consecutive_failures,
            "checked_at": utcnow().isoformat(),
        }

    def _note_probe(self, dep: ServedDeployment, info: DeploymentInfo, ok: bool, detail: str):
        dep.last_probe = time.monotonic()
        threshold = int(info.config.health_check["failure_threshold"])
        if ok:
            was_unhealthy = not dep.healthy
            dep.consecutive_failures, dep.healthy = 0, True
            if was_unhealthy:
                self._set_health(info.deployment_id, "healthy", "health check passed")
            return
        dep.consecutive_failures += 1
        if dep.consecutive_failures < threshold or not dep.healthy:
            return
        dep.healthy = False
        self._set_health(info.deployment_id, "unhealthy", detail)
        events.emit(
            "deployment.unhealthy",
            f"{info.deployment_id} failed {dep.consecutive_failures} health checks in a row: "
            f"{detail}",
            source=info.deployment_id,
            severity="critical",
            data={"consecutive_failures": dep.consecutive_failures, "detail": detail},
        )
        if info.config.rollback_on_error:
            try:
                self.rollback_deployment(
                    info.deployment_id,
                    f"{dep.consecutive_failures} consecutive failed health checks",
                    failed=True,
                    actor="health-check",
                    evidence={"detail": detail},
                )
            except NightScanError as exc:
                events.emit(
                    "deployment.rollback_failed",
                    f"automatic rollback of {info.deployment_id} impossible: {exc}",
                    source=info.deployment_id,
                    severity="critical",
                )

    def _set_health(self, deployment_id: str, health: str, detail: str) -> None:
        with self.db.write() as session:
            row = session.get(DeploymentRow, deployment_id)
            if row is not None and row.health != health:
                row.health, row.updated_at = health, utcnow()
                session.add(row)

    # ---- reconciliation ------------------------------------------------------------------

    def _reconcile_one(self, info: DeploymentInfo) -> tuple[ServedDeployment, ServedModel]:
        meta = self.registry.get_model(info.model_id, info.version)
        with self.pool.lock:
            served = self.pool.models.get(info.model_ref)
        if served is None:
            served = self._load_served(meta, info.config)
        self._install(info.config, served, info.generation)
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

    # ---- data plane ----------------------------------------------------------------------

    def _windows(self, audio_data: Any, sample_rate: int, clip_samples: int, max_s: float):
        from inference.audio import (
            AudioDecodeError,
            AudioTooLongError,
            decode_audio,
            fixed_windows,
            prepare_waveform,
        )

        try:
            if isinstance(audio_data, bytes | bytearray | memoryview):
                samples, sample_rate = decode_audio(bytes(audio_data))
            else:
                samples = np.asarray(audio_data, dtype=np.float32)
            waveform = prepare_waveform(samples, sample_rate, max_seconds=max_s)
        except AudioTooLongError as exc:
            raise PayloadTooLargeError(str(exc)) from None
        except (AudioDecodeError, ValueError, TypeError) as exc:
            raise ValidationError(str(exc)) from None
        return fixed_windows(waveform, clip_samples)

    def _target(self, request_id: str, deployment_id: str | None, model_id: str | None):
        """(deployment id, served deployment, served model) for a request without experiment."""
        if deployment_id is None:
            deployment_id = self.pool.pick(request_id, model_id)
            if deployment_id is None:
                self.reconcile()
                deployment_id = self.pool.pick(request_id, model_id)
            if deployment_id is None:
                raise NotFoundError(
                    "no healthy deployment is serving"
                    + (f" {model_id}" if model_id else "")
                    + "; deploy a model first (nightscan deploy MODEL_ID VERSION)"
                )
        local = self.pool.model_for(deployment_id)
        if local is None:
            info = self.get_deployment(deployment_id)
            if info.status != "running":
                raise NotFoundError(f"deployment {deployment_id!r} is {info.status}")
            local = self._reconcile_one(info)
        return deployment_id, local[0], local[1]

    def _experiment_target(self, model_ref: str) -> tuple[str, ServedModel, float]:
        """The runtime for an experiment variant: a deployment's, or one loaded for it."""
        with self.pool.lock:
            for dep in self.pool.deployments.values():
                if dep.model_ref == model_ref:
                    return (
                        dep.config.deployment_id,
                        self.pool.models[model_ref],
                        dep.config.max_audio_seconds,
                    )
            served = self.pool.models.get(model_ref)
        if served is None:
            model_id, version = model_ref.rsplit(":", 1)
            meta = self.registry.get_model(model_id, version)
            served = self._load_served(
                meta, DeploymentConfig(model_id=model_id, version=version).validate()
            )
            with self.pool.lock:
                if model_ref in self.pool.models:  # another request loaded it meanwhile
                    served.runtime.close(drain=False)
                    served = self.pool.models[model_ref]
                else:
                    self.pool.models[model_ref] = served
                self.pool.pinned.add(model_ref)
        return f"experiment:{model_ref}", served, DeploymentConfig.max_audio_seconds

    async def run_inference(
        self,
        audio_data: Any,
        request_id: str | None = None,
        experiment_id: str | None = None,
        *,
        sample_rate: int = SAMPLE_RATE,
        deployment_id: str | None = None,
        model_id: str | None = None,
    ) -> dict[str, Any]:
        """Classify one clip. ``audio_data`` is a waveform (numpy, any channels, at
        ``sample_rate``) or the bytes of a WAV/FLAC/OGG file. With ``experiment_id`` the A/B
        manager picks the variant (sticky per request id) and the result is recorded for it."""
        from inference.runtime import QueueFullError

        request_id = request_id or f"req_{uuid.uuid4().hex[:20]}"
        started = time.perf_counter()
        variant = None
        if experiment_id:
            from core.experiments import get_ab_test_manager

            ab = get_ab_test_manager()
            variant, model_ref = await asyncio.to_thread(ab.assign, experiment_id, request_id)
            dep_id, served, max_s = await asyncio.to_thread(self._experiment_target, model_ref)
        else:
            dep_id, dep, served = await asyncio.to_thread(
                self._target, request_id, deployment_id, model_id
            )
            max_s = dep.config.max_audio_seconds
        windows = self._windows(audio_data, sample_rate, served.clip_samples, max_s)
        try:
            probs = await served.runtime.infer(windows)
        except QueueFullError as exc:
            self.performance_tracker.record(dep_id, served.model_ref, 0.0, ok=False)
            raise OverloadedError(
                f"{dep_id} is at capacity ({served.runtime.queue_depth} windows queued)",
                retry_after_s=exc.retry_after_s,
            ) from None
        except Exception as exc:
            elapsed = time.perf_counter() - started
            self.performance_tracker.record(dep_id, served.model_ref, elapsed, ok=False)
            raise InferenceFailedError(f"{served.model_ref} failed: {exc}") from None
        elapsed = time.perf_counter() - started
        self.performance_tracker.record(dep_id, served.model_ref, elapsed, ok=True)
        mean = probs.mean(axis=0)
        best = int(mean.argmax())
        predictions = {
            "predicted_class": served.labels[best],
            "confidence": float(mean[best]),
            "probabilities": {
                label: float(p) for label, p in zip(served.labels, mean, strict=True)
            },
        }
        self._remember(
            request_id,
            deployment_id=dep_id,
            model_ref=served.model_ref,
            labels=served.labels,
            predicted_class=predictions["predicted_class"],
            experiment_id=experiment_id,
            variant=variant,
        )
        if experiment_id:
            await asyncio.to_thread(
                self._record_for_experiment,
                experiment_id,
                request_id,
                variant,
                {"confidence": predictions["confidence"], "inference_time": elapsed},
            )
        return {
            "request_id": request_id,
            "model_version": served.model_ref,
            "variant": variant,
            "deployment_id": dep_id,
            "predictions": predictions,
            "inference_time": elapsed,
        }

    def _remember(self, request_id: str, **entry: Any) -> None:
        entry["feedback"] = None
        with self._recent_lock:
            self._recent[request_id] = entry
            self._recent.move_to_end(request_id)
            while len(self._recent) > RECENT_REQUESTS:
                self._recent.popitem(last=False)

    def _record_for_experiment(self, experiment_id, request_id, variant, metrics) -> None:
        from core.experiments import get_ab_test_manager

        ab = get_ab_test_manager()
        known = self._experiment_metrics.get(experiment_id)
        if known is None:  # experiment configs are immutable once created
            known = set(ab.get_experiment(experiment_id).config.metric_specs())
            self._experiment_metrics[experiment_id] = known
        wanted = {k: v for k, v in metrics.items() if k in known}
        if not wanted:
            return
        try:
            ab.record_result(experiment_id, request_id, variant, wanted)
        except NightScanError as exc:  # e.g. stopped meanwhile: the prediction still stands
            log.warning("result for %s not recorded: %s", request_id, exc)

    def record_feedback(
        self, request_id: str, true_label: str, experiment_id: str | None = None
    ) -> dict[str, Any]:
        """Ground truth for an earlier prediction: joined to its version (and variant) and
        recorded as accuracy. Idempotent: a repeat counts once."""
        with self._recent_lock:
            entry = self._recent.get(request_id)
        if entry is None:
            raise NotFoundError(
                f"request {request_id!r} is unknown here (feedback is joined to the last "
                f"{RECENT_REQUESTS:,} predictions of this server)"
            )
        if experiment_id and entry["experiment_id"] and experiment_id != entry["experiment_id"]:
            raise ValidationError(
                f"request {request_id!r} belongs to experiment {entry['experiment_id']!r}"
            )
        if true_label not in entry["labels"]:
            raise ValidationError(
                f"unknown label {true_label!r}; expected one of: {', '.join(entry['labels'])}"
            )
        correct = entry["predicted_class"] == true_label
        first = False
        with self._recent_lock:
            if entry["feedback"] is None:
                entry["feedback"], first = correct, True
        if first:
            self.performance_tracker.record_feedback(
                entry["deployment_id"], entry["model_ref"], correct
            )
            if entry["experiment_id"]:
                self._record_for_experiment(
                    entry["experiment_id"],
                    request_id,
                    entry["variant"],
                    {"accuracy": 1.0 if correct else 0.0},
                )
        return {
            "request_id": request_id,
            "model_version": entry["model_ref"],
            "variant": entry["variant"],
            "experiment_id": entry["experiment_id"],
            "predicted_class": entry["predicted_class"],
            "true_label": true_label,
            "correct": entry["feedback"],
            "duplicate": not first,
        }

    # ---- background loop -----------------------------------------------------------------

    def tick(self) -> None:
        """One pass of the serving loop: reconcile, probe what is due, autoscale, snapshot."""
        self.reconcile()
        now = time.monotonic()
        for deployment_id in list(self.pool.deployments):
            local = self.pool.model_for(deployment_id)
            if local is None:
                continue
            dep, served = local
            if now - dep.last_probe >= float(dep.config.health_check["interval"]):
                info = self.get_deployment(deployment_id)
                result = probe_runtime(served, float(info.config.health_check["timeout"]))
                self._note_probe(dep, info, result.ok, result.detail)
            self._autoscale(dep, served)
        self.snapshots.maybe_persist(self.performance_tracker, list(self.pool.deployments))

    def _autoscale(self, dep: ServedDeployment, served: ServedModel) -> None:
        scaling = dep.config.scaling
        runtime = served.runtime
        replicas = runtime.replicas
        backlog = runtime.queue_depth > int(dep.config.batching["max_batch_size"]) * replicas
        cpu = self.performance_tracker._process.cpu_percent(None)
        target = float(scaling["target_cpu_utilization"])
        wanted = replicas
        if (backlog or cpu > target) and replicas < int(scaling["max_replicas"]):
            wanted = replicas + 1
        elif (
            runtime.queue_depth == 0
            and cpu < target / 2
            and replicas > int(scaling["min_replicas"])
        ):
            wanted = replicas - 1
        if wanted != replicas:
            runtime.set_replicas(wanted)
            events.emit(
                "deployment.scaled",
                f"{dep.config.deployment_id}: {replicas} -> {wanted} replicas "
                f"(queue {runtime.queue_depth}, cpu {cpu:.0f}%)",
                source=dep.config.deployment_id,
                data={"from": replicas, "to": wanted, "queue_depth": runtime.queue_depth},
            )

    def start_background(self, interval_s: float = 1.0) -> None:
        """Run ``tick`` every ``interval_s`` in a daemon thread; a tick never overlaps the next."""
        if self._loop_thread and self._loop_thread.is_alive():
            return
        self._loop_stop.clear()

        def loop() -> None:
            while not self._loop_stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("serving loop tick failed")
                self._loop_stop.wait(interval_s)

        self._loop_thread = threading.Thread(target=loop, name="serving-loop", daemon=True)
        self._loop_thread.start()

    def stop_background(self) -> None:
        self._loop_stop.set()
        if self._loop_thread:
            self._loop_thread.join(timeout=30)
            self._loop_thread = None

    def close(self) -> None:
        """Graceful: stop the loop, finish queued requests, flush the last snapshot."""
        self.stop_background()
        self.snapshots.maybe_persist(
            self.performance_tracker, list(self.pool.deployments), force=True
        )
        self.pool.close()


def get_deployment_manager() -> DeploymentManager:
    return get_context().service("deployments", DeploymentManager)
