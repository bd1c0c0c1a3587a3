"""Keeping deployments healthy: periodic probes with automatic rollback, autoscaling of
replicas, and snapshots for other processes, on one background loop whose ticks never overlap."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from core import events
from core.deployments.probe import probe_runtime, probe_runtimes
from core.deployments.served import ServedDeployment, ServedModel
from core.errors import NightScanError
from core.monitoring.actions import ErrorRateRollback
from core.monitoring.alerts import AlertEvaluator, experiment_samples, serving_samples
from data.types import utcnow

if TYPE_CHECKING:
    from core.deployments.canary import CanaryController
    from core.deployments.info import DeploymentInfo
    from core.deployments.serving import LocalServing
    from core.deployments.snapshots import SnapshotStore
    from core.deployments.store import DeploymentStore
    from core.deployments.tracker import PerformanceTracker
    from core.monitoring.serving_view import ServingView

log = logging.getLogger(__name__)
EXPERIMENT_ALERT_EVERY_S = 15.0
UP_TICKS, DOWN_TICKS, COOLDOWN_S = 3, 30, 30.0  # autoscaler hysteresis (ticks are ~1 s)


class Supervisor:
    def __init__(
        self,
        store: DeploymentStore,
        serving: LocalServing,
        tracker: PerformanceTracker,
        canaries: CanaryController,
        snapshots: SnapshotStore,
        monitor: ServingView,
    ) -> None:
        self.store = store
        self.serving = serving
        self.tracker = tracker
        self.canaries = canaries
        self.snapshots = snapshots
        self.monitor = monitor  # what the alerts read, and the rollback they may trigger
        self._loop_thread: threading.Thread | None = None
        self._loop_stop = threading.Event()
        self.alerts = AlertEvaluator()
        self.error_rollback = ErrorRateRollback()
        self._experiment_samples: list = []
        self._experiment_samples_at = float("-inf")

    def health(self, deployment_id: str) -> dict[str, Any]:
        """Probe the deployment with a real inference now (loading it here if needed)."""
        info = self.store.get(deployment_id)
        if info.status != "running":
            return {
                "deployment_id": deployment_id,
                "healthy": False,
                "status": info.status,
                "detail": f"deployment is {info.status}",
            }
        local = self.serving.model_for(deployment_id) or self.serving.reconcile_one(info)
        dep, served = local
        result = probe_runtime(served, timeout_s=float(info.config.health_check.timeout))
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
        threshold = int(info.config.health_check.failure_threshold)
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
                self.monitor.rollback_deployment(
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
        self.store.set_health(deployment_id, health)

    # ---- data plane ----------------------------------------------------------------------

    def tick(self) -> None:
        """One pass of the serving loop: reconcile, probe what is due, autoscale, snapshot."""
        self.serving.reconcile()
        now = time.monotonic()
        due = []
        snapshot = self.serving.snapshot()
        for deployment_id in snapshot.deployments:
            dep, served = snapshot.model_for(deployment_id)
            if now - dep.last_probe >= float(dep.config.health_check.interval):
                due.append((dep, served, self.store.get(deployment_id)))
            self._autoscale(dep, served)
        # All due probes run at once: a hung model costs the tick one timeout, not one each.
        targets = [(served, float(info.config.health_check.timeout)) for _d, served, info in due]
        for (dep, _served, info), result in zip(due, probe_runtimes(targets), strict=True):
            self._note_probe(dep, info, result.ok, result.detail)
        self.error_rollback.evaluate(self.monitor)
        try:  # canary judge and stepper (canary.py): its failure must not stop the loop
            self.canaries.tick()
        except Exception:
            log.exception("canary tick failed")
        self._evaluate_alerts()
        self.snapshots.maybe_persist(self.tracker, list(self.serving.deployments))

    def _evaluate_alerts(self) -> None:
        # Experiment analyses are cheap but not free: refresh their samples every 15 s and
        # reuse them in between, so an alert neither flaps nor lags by more than that.
        now = time.monotonic()
        if now - self._experiment_samples_at >= EXPERIMENT_ALERT_EVERY_S:
            self._experiment_samples_at = now
            try:
                self._experiment_samples = experiment_samples()
            except Exception:
                log.exception("experiment alert samples failed")
        self.alerts.evaluate(serving_samples(self.monitor) + self._experiment_samples)

    def _autoscale(self, dep: ServedDeployment, served: ServedModel) -> None:
        """HPA-style: utilisation is process CPU over the CPUs the deployment asked for. Scale up
        after UP_TICKS busy ticks in a row, down after DOWN_TICKS idle ones, and never within
        COOLDOWN_S of the last change, so a noisy process does not flap between sizes."""
        scaling = dep.config.scaling
        runtime = served.runtime
        replicas = runtime.replicas
        backlog = runtime.queue_depth > int(dep.config.batching.max_batch_size) * replicas
        cpu, _ = self.tracker.process_usage()
        utilisation = cpu / max(float(dep.config.resources.cpu), 0.1)
        target = float(scaling.target_cpu_utilization)
        state = dep.extra.setdefault("autoscale", {"busy": 0, "idle": 0, "changed": 0.0})
        busy = backlog or utilisation > target
        idle = runtime.queue_depth == 0 and utilisation < target / 2
        state["busy"] = state["busy"] + 1 if busy else 0
        state["idle"] = state["idle"] + 1 if idle else 0
        if time.monotonic() - state["changed"] < COOLDOWN_S:
            return
        wanted = replicas
        if state["busy"] >= UP_TICKS and replicas < int(scaling.max_replicas):
            wanted = replicas + 1
        elif state["idle"] >= DOWN_TICKS and replicas > int(scaling.min_replicas):
            wanted = replicas - 1
        if wanted == replicas:
            return
        runtime.set_replicas(wanted)
        state.update(busy=0, idle=0, changed=time.monotonic())
        events.emit(
            "deployment.scaled",
            f"{dep.config.deployment_id}: {replicas} -> {wanted} replicas "
            f"(queue {runtime.queue_depth}, cpu {utilisation:.0f}% of target {target:g}%)",
            source=dep.config.deployment_id,
            data={"from": replicas, "to": wanted, "queue_depth": runtime.queue_depth,
                  "cpu_utilisation": utilisation},
        )  # fmt: skip

    def start(self, interval_s: float = 1.0) -> None:
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

    def stop(self) -> None:
        self._loop_stop.set()
        if self._loop_thread:
            self._loop_thread.join(timeout=30)
            self._loop_thread = None
