"""Canary rollouts: a new version takes a sticky, growing share of one deployment's requests
while a sequential policy (canary_policy.py) compares it with the stable version over the whole
rollout, and it is promoted on schedule or aborted on the evidence.

Routing
    ``deploy_model(DeploymentConfig(..., canary_deployment=True, traffic_percentage=5))`` on a
    deployment that serves another version starts a canary instead of switching. The ``canary``
    row holds the weight; every change bumps the deployment's generation, so every serving
    process reconciles to the same split (and restores it after a restart). A request goes to
    the canary when ``sha256(salt:unit)`` falls below the weight, the unit being the user id when
    given, else the request id (``CanaryRoute.takes``).

Data
    Each process counts requests, errors, latencies and feedback per arm in memory and flushes
    them to ``canary_sample`` on every supervisor tick, so the policy sees the traffic of all
    serving processes. Every analysis folds the new batches into the policy's state (its
    sufficient statistics, persisted in the row) and consumes them.

Controller (canary_stepper.py, on the supervisor tick)
    progressing --(every analysis_interval_s: policy.observe)--> hold, step, promote or abort,
    applied in the transaction that records the analysis:
      * abort when a metric's confidence sequence lies entirely beyond its margin (errors,
        latency exceedance, accuracy where labels exist): all traffic back to stable, the canary
        version FAILED with the evidence. An inconclusive look counts for nothing;
      * otherwise step on schedule (``step_seconds``, default ``canary_duration_hours`` spread
        over the weights below 100); the step to 100 promotes (the canary becomes the
        deployment's version, the old stable RETIRED unless served elsewhere);
      * a canary that fails its own health probes (``health_check``) is aborted likewise: one
        that hangs or always raises may never complete a request the policy could count.
    paused: the weight holds and nothing is judged; ``resume`` restarts the step's clock.
    Manual ``promote`` / ``abort`` work in either state. Each transition is one transaction
    (canary_store.py) with its event and audit entry; each analysis is a ``canary.analysis``
    event and a ``canary_check`` row.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from core.deployments.canary_data import Arm, CanaryObservations
from core.deployments.canary_policy import CanaryPolicy
from core.deployments.canary_stepper import CanaryStepper, next_weight, step_seconds
from core.deployments.canary_store import CanaryStore, summary
from core.deployments.config import DeploymentConfig
from core.deployments.served import ServedDeployment, ServedModel
from core.deployments.serving import LocalServing
from core.errors import ConflictError, DeploymentFailedError, NightScanError, NotFoundError
from data.canary_tables import CanaryCheckRow, CanaryRow

if TYPE_CHECKING:
    from core.model_metadata import ModelMetadata

log = logging.getLogger(__name__)
ACTIVE = ("progressing", "paused")


class CanaryController:
    def __init__(self, store: CanaryStore, serving: LocalServing, clock=time.time) -> None:
        self.store = store
        self.serving = serving
        self.clock = clock  # unix seconds; tests inject their own
        self.observations = CanaryObservations(store.db)
        self.stepper = CanaryStepper(store, serving, self.observations, lambda: self.clock())

    # ---- data plane ----------------------------------------------------------------------

    @staticmethod
    def route(dep: ServedDeployment, served: ServedModel, unit_id: str):
        """(the model that answers, the arm to count it on, or None without a canary)."""
        canary = dep.canary
        if canary is None:
            return served, None
        if canary.takes(unit_id):
            return canary.model, (canary.canary_id, "canary")
        return served, (canary.canary_id, "stable")

    def observe(self, arm: Arm | None, latency_s: float, ok: bool) -> None:
        self.observations.observe(arm, latency_s, ok)

    def observe_feedback(self, arm: Arm | None, correct: bool) -> None:
        self.observations.observe_feedback(arm, correct)

    def tick(self) -> None:
        """Flush this process's observations, judge what is due, probe local canaries."""
        self.stepper.tick()

    # ---- queries -------------------------------------------------------------------------

    def active_row(self, deployment_id: str) -> CanaryRow | None:
        """The running or paused canary's row (the controller's own view)."""
        return self.store.deployments.active_canary(deployment_id)

    def active(self, deployment_id: str) -> dict[str, Any] | None:
        """The running or paused canary's status (as ``status()``), else None."""
        if self.active_row(deployment_id) is None:
            return None
        return self.status(deployment_id)

    def list_canaries(self, include_ended: bool = False) -> list[dict[str, Any]]:
        return [
            {"deployment_id": r.deployment_id, **summary(r)} for r in self.store.list(include_ended)
        ]

    def status(self, deployment_id: str, checks: int = 10) -> dict[str, Any]:
        """The latest canary of the deployment: state, weights, counters, recent verdicts."""
        with self.store.db.session() as session:
            row = session.exec(
                select(CanaryRow)
                .where(CanaryRow.deployment_id == deployment_id)
                .order_by(col(CanaryRow.id).desc())
            ).first()
            if row is None:
                raise NotFoundError(f"no canary has run on deployment {deployment_id!r}")
            history = session.exec(
                select(CanaryCheckRow)
                .where(CanaryCheckRow.canary_id == row.id)
                .order_by(col(CanaryCheckRow.id).desc())
                .limit(checks)
            ).all()
        config = DeploymentConfig.from_dict(row.config)
        now = self.clock()
        state = row.policy_state or {}
        return {
            "deployment_id": row.deployment_id,
            **summary(row),
            "steps": list(config.canary.steps),
            "next_weight": next_weight(config, row.weight) if row.state in ACTIVE else None,
            "step_seconds": step_seconds(config),
            "seconds_at_weight": max(0.0, now - row.step_started_at),
            "analysis_interval_s": config.canary.analysis_interval_s,
            "next_analysis_in_s": (
                max(0.0, row.next_analysis_at - now) if row.state == "progressing" else None
            ),
            "alpha": config.canary.alpha,
            "quality_metrics": list(config.canary.quality_metrics),
            "quality_margin": config.canary.quality_margin,
            "requests": {
                arm: (state.get(arm) or {}).get("requests", 0) for arm in ("stable", "canary")
            },
            "checks": row.checks,
            "passes": row.passes,
            "fails": row.fails,
            "inconclusive": row.inconclusive,
            "last_verdict": row.last_verdict,
            "recent_checks": [
                {
                    "at": c.at.isoformat(),
                    "weight": c.weight,
                    "verdict": c.verdict,
                    "action": c.action,
                    "reason": c.reason,
                }
                for c in history
            ],
            "reason": row.reason,
            "actor": row.actor,
            "started_at": row.started_at.isoformat(),
            "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        }

    # ---- control plane -------------------------------------------------------------------

    def intercepts(self, config: DeploymentConfig) -> bool:
        """Whether ``deploy_model(config)`` starts a canary; refuses any deploy onto a
        deployment whose canary is still running."""
        running = self.active_row(config.deployment_id)
        if running is not None:
            raise ConflictError(
                f"a canary of {running.canary_ref} is running on {config.deployment_id}; "
                "promote or abort it first (nightscan canary promote|abort)"
            )
        if not config.canary_deployment:
            return False
        try:
            stable = self.store.deployments.get(config.deployment_id)
        except NotFoundError:
            return False  # nothing to compare with: a plain deploy
        return stable.status == "running" and stable.config.serving_ref != config.serving_ref

    def start(
        self, config: DeploymentConfig, meta: ModelMetadata, actor: str | None = None
    ) -> bool:
        """Verify the canary version like a deploy, then route its first weight to it."""
        from core.quality.names import check_classes, check_quality_metrics

        metrics = check_quality_metrics(config.canary.quality_metrics, "canary.quality_metrics")
        check_classes(metrics, meta.labels, f"canary.quality_metrics of {meta.ref}")
        stable = self.store.deployments.get(config.deployment_id)
        try:
            served = self.serving.load(meta, config, verify=True)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, NightScanError) else f"{type(exc).__name__}: {exc}"
            self.store.deployments.record_failed_attempt(config, meta.ref, reason, actor)
            raise DeploymentFailedError(
                f"canary {meta.ref} on {config.deployment_id} failed: {reason}; "
                f"{stable.model_ref} keeps serving all traffic"
            ) from None
        state = CanaryPolicy.from_config(config).start(self.clock())  # its first weight too
        try:
            self.store.start(
                config, canary_ref=served.model_ref, weight=state.weight, now=state.started_at,
                actor=actor, policy_state=state.to_dict(),
            )  # fmt: skip
        except Exception:
            served.runtime.close(drain=False)
            raise
        self.serving.hand_over(served)
        self.serving.apply(config.deployment_id)
        return True

    def promote(
        self,
        deployment_id: str,
        reason: str = "manual promotion",
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The canary becomes the deployment's version (all traffic)."""
        result = self.store.promote(deployment_id, reason, actor, evidence)
        self.serving.apply(deployment_id)
        return result

    def abort(
        self,
        deployment_id: str,
        reason: str = "manual abort",
        actor: str | None = None,
        failed: bool = False,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """All traffic back to stable; ``failed`` also marks the canary version FAILED."""
        result = self.store.abort(deployment_id, reason, actor, failed, evidence)
        self.serving.apply(deployment_id)
        return result

    def pause(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]:
        return self.store.set_paused(deployment_id, True, self.clock(), actor)

    def resume(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]:
        return self.store.set_paused(deployment_id, False, self.clock(), actor)
