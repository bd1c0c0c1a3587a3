"""Canary rollouts: a new version takes a sticky, growing share of one deployment's requests while
a statistical judge (canary_judge.py) compares it with the stable version, and is promoted or
aborted on the evidence.

Routing
    ``deploy_model(DeploymentConfig(..., canary_deployment=True, traffic_percentage=5))`` on a
    deployment that serves another version starts a canary instead of switching. The ``canary``
    row holds the weight; every change bumps the deployment's generation, so every serving
    process reconciles to the same split (and restores it after a restart). A request goes to
    the canary when ``sha256(salt:unit)`` falls below the weight, the unit being the user id when
    given, else the request id (``CanaryRoute.takes``).

Data
    Each process counts requests, errors, latencies and feedback per arm in memory and flushes
    them to ``canary_sample`` on every supervisor tick, so the judge sees the traffic of all
    serving processes. A verdict consumes the batches it judged; an INCONCLUSIVE one leaves them
    for the next analysis, so a quiet deployment accumulates data instead of never deciding.

Stepper (on the supervisor tick; ``tick()`` is also callable directly)
    progressing --(every analysis_interval_s: judge)--> stays, steps up, promotes, or aborts
      * step up after a PASS once ``step_seconds`` have passed at this weight and the success
        rate ``passes / (passes + fails)`` at this weight is >= ``canary_success_threshold``;
        ``step_seconds`` defaults to ``canary_duration_hours`` spread over the weights below 100;
      * the step to 100 promotes: the canary becomes the deployment's version (DEPLOYED), the
        old stable is RETIRED unless served elsewhere;
      * ``failure_threshold`` consecutive FAILs abort: all traffic back to stable, the canary
        version FAILED with the judge's evidence. INCONCLUSIVE never counts as a failure;
      * a canary that fails its own health probes (``health_check``) is aborted likewise: one
        that hangs or always raises may never complete a request the judge could count.
    paused: the weight holds and nothing is judged; ``resume`` restarts the step's clock.
    Manual ``promote`` / ``abort`` work in either state. Each transition is an event with its
    evidence and an audit entry; each analysis is a ``canary.analysis`` event and a
    ``canary_check`` row.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlmodel import col, delete, select

from core import events
from core.deployments.canary_data import Arm, CanaryObservations
from core.deployments.canary_stepper import CanaryStepper, next_weight, step_seconds
from core.deployments.config import DeploymentConfig
from core.deployments.serving import CanaryRoute, ServedDeployment, ServedModel
from core.errors import ConflictError, DeploymentFailedError, NightScanError, NotFoundError
from core.lifecycle import ModelStatus
from data.canary_tables import CanaryCheckRow, CanaryRow, CanarySampleRow
from data.deployment_tables import DeploymentRevisionRow, DeploymentRow
from data.types import utcnow

if TYPE_CHECKING:
    from core.deployments.info import DeploymentInfo
    from core.deployments.manager import DeploymentManager
    from core.model_metadata import ModelMetadata

log = logging.getLogger(__name__)
ACTIVE = ("progressing", "paused")


def summary(row: CanaryRow) -> dict[str, Any]:
    return {
        "canary_id": row.id,
        "canary": row.canary_ref,
        "stable": row.stable_ref,
        "state": row.state,
        "weight": row.weight,
    }


class CanaryController:
    def __init__(self, manager: DeploymentManager, clock=time.time) -> None:
        self.manager = manager
        self.clock = clock  # unix seconds; tests inject their own
        self.observations = CanaryObservations(manager.db)
        self.stepper = CanaryStepper(self)
        self._handover: dict[str, ServedModel] = {}  # verified at start, installed on reconcile

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

    @staticmethod
    def _active_in(session, deployment_id: str, lock: bool = False) -> CanaryRow | None:
        query = select(CanaryRow).where(
            CanaryRow.deployment_id == deployment_id, col(CanaryRow.state).in_(ACTIVE)
        )
        return session.exec(query.with_for_update() if lock else query).first()

    def active(self, deployment_id: str) -> CanaryRow | None:
        with self.manager.db.session() as session:
            return self._active_in(session, deployment_id)

    def list_canaries(self, include_ended: bool = False) -> list[dict[str, Any]]:
        query = select(CanaryRow).order_by(col(CanaryRow.id))
        if not include_ended:
            query = query.where(col(CanaryRow.state).in_(ACTIVE))
        with self.manager.db.session() as session:
            return [{"deployment_id": r.deployment_id, **summary(r)} for r in session.exec(query)]

    def status(self, deployment_id: str, checks: int = 10) -> dict[str, Any]:
        """The latest canary of the deployment: state, weights, counters, recent verdicts."""
        with self.manager.db.session() as session:
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
        decisive = row.passes + row.fails
        return {
            "deployment_id": row.deployment_id,
            **summary(row),
            "steps": list(config.canary.steps),
            "next_weight": next_weight(config, row.weight) if row.state in ACTIVE else None,
            "step_seconds": step_seconds(config),
            "seconds_at_weight": max(0.0, now - row.step_started_at),
            "analysis_interval_s": config.canary.analysis_interval_s,
            "next_analysis_in_s": max(0.0, row.next_analysis_at - now),
            "checks": row.checks,
            "passes": row.passes,
            "fails": row.fails,
            "inconclusive": row.inconclusive,
            "success_rate": row.passes / decisive if decisive else None,
            "success_threshold": config.canary_success_threshold,
            "consecutive_failures": row.consecutive_failures,
            "failure_threshold": config.canary.failure_threshold,
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
        with self.manager.db.session() as session:
            running = self._active_in(session, config.deployment_id)
            row = session.get(DeploymentRow, config.deployment_id)
        if running is not None:
            raise ConflictError(
                f"a canary of {running.canary_ref} is running on {config.deployment_id}; "
                "promote or abort it first (nightscan canary promote|abort)"
            )
        if not config.canary_deployment or row is None or row.status != "running":
            return False  # nothing to compare with: a plain deploy
        current = DeploymentConfig.from_dict(row.config)
        return current.serving_ref != config.serving_ref

    def start(
        self, config: DeploymentConfig, meta: ModelMetadata, actor: str | None = None
    ) -> bool:
        """Verify the canary version like a deploy, then route its first weight to it."""
        mgr = self.manager
        stable = mgr.get_deployment(config.deployment_id)
        try:
            served = mgr._load(meta, config, verify=True)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, NightScanError) else f"{type(exc).__name__}: {exc}"
            mgr._record_failed_attempt(config, meta, reason, actor)
            raise DeploymentFailedError(
                f"canary {meta.ref} on {config.deployment_id} failed: {reason}; "
                f"{stable.model_ref} keeps serving all traffic"
            ) from None
        share = config.traffic_percentage
        weight = float(share) if 0 < share < 100 else float(config.canary.steps[0])
        # The deployment's own share among deployments stays; the canary's is its weight.
        stored = DeploymentConfig.from_dict(
            {**config.to_dict(), "traffic_percentage": stable.config.traffic_percentage}
        )
        now = self.clock()
        with mgr.db.write() as session:
            if self._active_in(session, config.deployment_id, lock=True) is not None:
                served.runtime.close(drain=False)
                raise ConflictError(f"a canary is already running on {config.deployment_id}")
            row = CanaryRow(
                deployment_id=config.deployment_id, model_id=meta.model_id,
                version=meta.version, canary_ref=served.model_ref,
                stable_ref=stable.config.serving_ref, state="progressing", weight=weight,
                config=stored.to_dict(), step_started_at=now,
                next_analysis_at=now + float(config.canary.analysis_interval_s),
                reason="started", actor=actor or mgr.ctx.settings.actor,
            )  # fmt: skip
            session.add(row)
            session.flush()
            self.bump(session, config.deployment_id, f"canary {served.model_ref} at {weight:g}%")
            session.add(mgr._revision(stored, "canary", f"canary at {weight:g}%", actor))
            mgr.ctx.audit.record(
                session, "canary.start", "deployment", config.deployment_id,
                after=summary(row), detail=f"{weight:g}% to {served.model_ref}", actor=actor,
            )  # fmt: skip
            events.emit(
                "canary.started",
                f"{config.deployment_id}: canary {served.model_ref} takes {weight:g}% "
                f"(stable {row.stable_ref})",
                source=config.deployment_id,
                data={**summary(row), "steps": list(config.canary.steps)},
                session=session,
            )
        self._handover[served.model_ref] = served
        self.apply_local(config.deployment_id)
        return True

    def promote(
        self,
        deployment_id: str,
        reason: str = "manual promotion",
        actor: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The canary becomes the deployment's version (all traffic)."""
        mgr = self.manager
        with mgr.db.write() as session:
            row = self._require_active(session, deployment_id)
            dep = mgr._row(session, deployment_id)
            config = DeploymentConfig.from_dict(row.config)
            old = (dep.model_id, dep.version)
            mgr._close_active_revision(session, deployment_id, "replaced")
            self._set_canary_revision(session, deployment_id, "active", f"promoted: {reason}")
            dep.model_id, dep.version, dep.config = config.model_id, config.version, row.config
            dep.health = "healthy"
            self.bump(session, deployment_id, f"canary promoted: {reason}")
            self._end(session, row, "promoted", reason, weight=100.0)
            mgr.ctx.audit.record(
                session, "canary.promote", "deployment", deployment_id,
                before={"model_version": f"{old[0]}:{old[1]}"}, after=summary(row),
                detail=reason, actor=actor,
            )  # fmt: skip
            events.emit(
                "canary.promoted",
                f"{deployment_id} now serves {row.canary_ref} (was {row.stable_ref}): {reason}",
                source=deployment_id,
                data={**summary(row), "evidence": evidence or {}},
                session=session,
            )
            result = summary(row)
        if not config.ensemble:
            meta = mgr.registry.get_model(config.model_id, config.version)
            if meta.status is not ModelStatus.DEPLOYED:
                mgr.registry.update_status(
                    meta.model_id, meta.version, ModelStatus.DEPLOYED,
                    reason=f"canary promoted on {deployment_id}", actor=actor,
                )  # fmt: skip
        members = config.ensemble.members if config.ensemble else ()
        if old != (config.model_id, config.version) and f"{old[0]}:{old[1]}" not in members:
            mgr._retire_if_unused(*old, f"replaced by canary {row.canary_ref}")
        self.apply_local(deployment_id)
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
        mgr = self.manager
        with mgr.db.write() as session:
            row = self._require_active(session, deployment_id)
            self._set_canary_revision(session, deployment_id, "failed" if failed else "aborted",
                                      f"canary aborted: {reason}")  # fmt: skip
            self.bump(session, deployment_id, f"canary aborted: {reason}")
            self._end(session, row, "aborted", reason, weight=0.0)
            mgr.ctx.audit.record(
                session, "canary.abort", "deployment", deployment_id,
                after={**summary(row), "evidence": evidence or {}}, detail=reason, actor=actor,
            )  # fmt: skip
            events.emit(
                "canary.aborted",
                f"{deployment_id}: canary {row.canary_ref} aborted, all traffic back to "
                f"{row.stable_ref}: {reason}",
                source=deployment_id,
                severity="critical" if failed else "warning",
                data={**summary(row), "evidence": evidence or {}},
                session=session,
            )
            result = summary(row)
            ensemble = bool(row.config.get("ensemble"))
        if failed and not ensemble:
            mgr._retire_if_unused(row.model_id, row.version, reason[:500], failed=True)
        self.apply_local(deployment_id)
        return result

    def pause(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]:
        return self._set_paused(deployment_id, True, actor)

    def resume(self, deployment_id: str, actor: str | None = None) -> dict[str, Any]:
        return self._set_paused(deployment_id, False, actor)

    def _set_paused(self, deployment_id: str, paused: bool, actor: str | None) -> dict[str, Any]:
        verb = "pause" if paused else "resume"
        with self.manager.db.write() as session:
            row = self._require_active(session, deployment_id)
            if (row.state == "paused") == paused:
                raise ConflictError(f"the canary on {deployment_id} is already {row.state}")
            now = self.clock()
            row.state = "paused" if paused else "progressing"
            if not paused:  # judge only what comes after the pause, on a fresh step clock
                row.step_started_at = now
                row.next_analysis_at = now + float(row.config["canary"]["analysis_interval_s"])
                session.exec(delete(CanarySampleRow).where(CanarySampleRow.canary_id == row.id))
            row.updated_at = utcnow()
            session.add(row)
            self.manager.ctx.audit.record(
                session, f"canary.{verb}", "deployment", deployment_id, after=summary(row),
                actor=actor,
            )  # fmt: skip
            events.emit(
                f"canary.{verb}d",
                f"{deployment_id}: canary {row.canary_ref} {verb}d at {row.weight:g}%",
                source=deployment_id,
                data=summary(row),
                session=session,
            )
            return summary(row)

    def end_for(self, deployment_id: str, reason: str, actor: str | None = None) -> None:
        """Abort a running canary because the deployment itself changes (rollback, undeploy)."""
        if self.active(deployment_id) is not None:
            try:
                self.abort(deployment_id, reason, actor=actor)
            except ConflictError:
                pass  # ended meanwhile by another process

    # ---- helpers -------------------------------------------------------------------------

    def _require_active(self, session, deployment_id: str) -> CanaryRow:
        row = self._active_in(session, deployment_id, lock=True)
        if row is None:
            self.manager._row(session, deployment_id)  # NotFoundError for an unknown id
            raise ConflictError(f"no canary is running on {deployment_id}")
        return row

    def bump(self, session, deployment_id: str, reason: str) -> None:
        """A routing change: every serving process reconciles this deployment."""
        dep = self.manager._row(session, deployment_id)
        dep.generation += 1
        dep.reason, dep.updated_at = reason, utcnow()
        session.add(dep)

    def _end(self, session, row: CanaryRow, state: str, reason: str, weight: float) -> None:
        row.state, row.reason, row.weight = state, reason, weight
        row.ended_at = row.updated_at = utcnow()
        session.add(row)
        session.exec(delete(CanarySampleRow).where(CanarySampleRow.canary_id == row.id))

    @staticmethod
    def _set_canary_revision(session, deployment_id: str, status: str, reason: str) -> None:
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

    def apply_local(self, deployment_id: str) -> None:
        """Re-route here now when this process serves the deployment (others reconcile)."""
        if deployment_id in self.manager.pool.deployments:
            self.manager._reconcile_one(self.manager.get_deployment(deployment_id))
        for ref in list(self._handover):  # verified here but not served here: not needed
            handed = self._handover.pop(ref, None)
            if handed is not None:
                handed.runtime.close(drain=False)

    def route_for(self, info: DeploymentInfo) -> CanaryRoute | None:
        """The running canary's route for a deployment being (re)installed here."""
        row = self.active(info.deployment_id)
        if row is None:
            return None
        pool = self.manager.pool
        with pool.lock:
            served = pool.models.get(row.canary_ref)
        handed = self._handover.pop(row.canary_ref, None)
        if served is None:
            served = handed
        elif handed is not None and handed.runtime is not served.runtime:
            handed.runtime.close(drain=False)
        config = DeploymentConfig.from_dict(row.config)
        if served is None:
            try:
                meta = self.manager.registry.get_model(row.model_id, row.version)
                served = self.manager._load(meta, config)
            except Exception as exc:  # the stable version keeps serving everything here
                log.warning("canary %s cannot be served here: %s", row.canary_ref, exc)
                events.emit(
                    "canary.restore_failed",
                    f"{info.deployment_id}: canary {row.canary_ref} cannot be served here: {exc}",
                    source=info.deployment_id,
                    severity="critical",
                )
                return None
        salt = f"canary:{info.deployment_id}:{row.id}"
        return CanaryRoute(served, row.weight, row.id, salt, config.health_check)
