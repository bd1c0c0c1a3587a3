"""The canary controller's loop, run on every supervisor tick: it persists the policy's state and
applies its decisions; the deciding is ``CanaryPolicy`` (canary_policy.py, pure).

``tick`` flushes this process's observations, runs every analysis that is due and probes the
canaries served here. An analysis happens once per interval across all processes: one write
transaction re-reads the canary row (locked on PostgreSQL; SQLite serialises writers), folds the
batches every process flushed since the last analysis into the policy's state (they are consumed
whatever the decision: the policy accumulates over the whole rollout itself), records the check
and acts on the decision (step, promote, abort) in the same commit.

A canary that hangs or always raises may never produce a judged request, so it is also probed
like a deployment (a real inference, its ``health_check`` interval, timeout and threshold on the
controller's clock): ``failure_threshold`` consecutive failed probes abort it as FAILED.

Quality metrics (``canary.quality_metrics``) need the arms' labelled confusion counts: they are
read from the quality rollup's hourly counts (a GROUP BY over count rows, never the predictions
themselves), all-time for the canary, and the policy is given what is new since its state's
totals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlmodel import col, delete, select

from core import events
from core.deployments.canary_data import windows_from_batches
from core.deployments.canary_policy import (
    ABORT,
    HOLD,
    PROMOTE,
    STEP,
    ArmWindow,
    CanaryPolicy,
    PolicyState,
)
from core.deployments.config import DeploymentConfig
from core.deployments.probe import probe_runtime
from core.errors import NightScanError
from data.canary_tables import CanaryCheckRow, CanaryRow, CanarySampleRow
from data.types import utcnow

if TYPE_CHECKING:
    from core.deployments.canary_data import CanaryObservations
    from core.deployments.canary_policy import Decision
    from core.deployments.canary_store import CanaryStore
    from core.deployments.serving import LocalServing

log = logging.getLogger(__name__)
JUDGE = "canary-judge"  # the actor of automatic steps, promotions and aborts


def step_seconds(config: DeploymentConfig) -> float:
    """Time at each weight: explicit, or ``canary_duration_hours`` over the weights below 100."""
    explicit = config.canary.step_seconds
    if explicit is not None:
        return float(explicit)
    below = [s for s in config.canary.steps if s < 100] or [0]
    return config.canary_duration_hours * 3600.0 / len(below)


def next_weight(config: DeploymentConfig, weight: float) -> float:
    return next((float(s) for s in config.canary.steps if s > weight), 100.0)


def verdict_of(decision: Decision) -> str:
    """One word for people: FAIL (worse beyond a margin), PASS (within every margin that has
    data), else INCONCLUSIVE (an inconclusive look counts for nothing)."""
    if decision.action == ABORT:
        return "FAIL"
    outcomes = {c.outcome for c in decision.checks if c.outcome != "skipped"}
    return "PASS" if outcomes == {"within"} else "INCONCLUSIVE"


def with_new_confusion(state: PolicyState, stable: ArmWindow, canary: ArmWindow, totals):
    """The windows plus the labelled confusion counts that ``totals`` (all-time, per arm) has
    beyond what the state has already counted."""
    out = []
    for arm, window in (("stable", stable), ("canary", canary)):
        seen = getattr(state, arm).confusion_map
        new = {k: n - seen.get(k, 0) for k, n in totals.get(arm, {}).items()}
        out.append(replace(window, confusion={k: n for k, n in new.items() if n > 0}))
    return out[0], out[1]


def policy_state(row: CanaryRow, policy: CanaryPolicy) -> PolicyState:
    """The row's state; a canary started before the policy existed starts one now."""
    if row.policy_state:
        return PolicyState.from_dict(row.policy_state)
    state = policy.start(row.step_started_at)
    return PolicyState(**{**state.__dict__, "weight": row.weight})


class CanaryStepper:
    def __init__(
        self,
        store: CanaryStore,
        serving: LocalServing,
        observations: CanaryObservations,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.serving = serving
        self.observations = observations
        self.clock = clock
        self._probes: dict[int, tuple[float, int]] = {}  # canary id -> (last probe, failures)

    def tick(self) -> None:
        self.observations.flush()
        now = self.clock()
        with self.store.db.session() as session:
            due = session.exec(
                select(CanaryRow.id).where(
                    CanaryRow.state == "progressing", col(CanaryRow.next_analysis_at) <= now
                )
            ).all()
        for canary_id in due:
            try:
                self.analyze(canary_id, now)
            except NightScanError as exc:  # e.g. ended by another process meanwhile
                log.info("canary %s: %s", canary_id, exc)
            except Exception:
                log.exception("canary %s analysis failed", canary_id)
        self.probe_local(now)

    def analyze(self, canary_id: int, now: float | None = None) -> Decision | None:
        """One analysis: fold the new batches into the policy, record, and act on its decision."""
        now = self.clock() if now is None else now
        quality = self._quality_counts(canary_id)  # read before the write transaction
        with self.store.deployments.transition("canary_analysis") as session:
            row = session.exec(
                select(CanaryRow).where(CanaryRow.id == canary_id).with_for_update()
            ).first()
            if row is None or row.state != "progressing" or row.next_analysis_at > now:
                return None  # another process analysed it, or it ended
            config = DeploymentConfig.from_dict(row.config)
            policy = CanaryPolicy.from_config(config)
            batches = session.exec(
                select(CanarySampleRow)
                .where(
                    CanarySampleRow.canary_id == canary_id,
                    col(CanarySampleRow.id) > row.consumed_sample_id,
                )
                .order_by(col(CanarySampleRow.id))
            ).all()
            stable, canary = windows_from_batches(list(batches), canary_id)
            state = policy_state(row, policy)
            if quality is not None:
                stable, canary = with_new_confusion(state, stable, canary, quality[1])
                policy = CanaryPolicy.from_config(config, labels=quality[0])
            state, decision = policy.observe(state, stable=stable, canary=canary, now=now)
            if batches:  # counted now, whatever the decision: never twice
                row.consumed_sample_id = batches[-1].id
                session.exec(
                    delete(CanarySampleRow).where(
                        CanarySampleRow.canary_id == canary_id,
                        col(CanarySampleRow.id) <= row.consumed_sample_id,
                    )
                )
            self._record(session, row, state, decision, batches=len(batches), now=now)
            evidence = row.last_verdict
            if decision.action == STEP:
                self.store.step_in(session, row, decision.weight, now, decision.reason, JUDGE,
                                   evidence)  # fmt: skip
            elif decision.action == PROMOTE:
                self.store.promote_in(session, row, decision.reason, JUDGE, evidence)
            elif decision.action == ABORT:
                self.store.abort_in(session, row, decision.reason, JUDGE, failed=True,
                                    evidence=evidence)  # fmt: skip
            deployment_id = row.deployment_id
        if decision.action != HOLD:
            self.serving.apply(deployment_id)
        return decision

    def _quality_counts(self, canary_id: int):
        """(labels of both versions, {arm: all-time confusion}) when the canary judges quality
        metrics, else None."""
        with self.store.db.session() as session:
            row = session.get(CanaryRow, canary_id)
        if row is None or not (row.config.get("canary") or {}).get("quality_metrics"):
            return None
        from core.quality.store import QualityStore, Scope

        quality = QualityStore(self.store.db)
        scope = Scope(deployment_id=row.deployment_id, canary_id=canary_id, split_by="canary_arm")
        counts = quality.counts(scope)
        labels: list[str] = []
        for ref in (row.stable_ref, row.canary_ref):
            labels += [x for x in quality.labels_of(ref) if x not in labels]
        return tuple(labels), {arm: dict(g.confusion) for arm, g in counts.items()}

    @staticmethod
    def _record(session, row: CanaryRow, state, decision: Decision, batches: int, now: float):
        verdict = verdict_of(decision)
        evidence: dict[str, Any] = {
            **decision.evidence, "verdict": verdict, "weight_before": row.weight,
            "batches": batches,
            "requests": {"stable": state.stable.requests, "canary": state.canary.requests},
        }  # fmt: skip
        action = {STEP: "stepped", PROMOTE: "promoted", ABORT: "aborted"}.get(decision.action, "")
        row.policy_state = state.to_dict()
        row.checks += 1
        row.passes += verdict == "PASS"
        row.fails += verdict == "FAIL"
        row.inconclusive += verdict == "INCONCLUSIVE"
        row.last_verdict = evidence
        config = DeploymentConfig.from_dict(row.config)
        row.next_analysis_at = now + float(config.canary.analysis_interval_s)
        row.updated_at = utcnow()
        session.add(row)
        session.add(CanaryCheckRow(
            canary_id=row.id, weight=row.weight, verdict=verdict, action=action,
            reason=decision.reason, evidence=evidence,
        ))  # fmt: skip
        events.emit(
            "canary.analysis",
            f"{row.deployment_id}: {verdict} at {row.weight:g}%: {decision.reason}",
            source=row.deployment_id,
            severity="warning" if verdict == "FAIL" else "info",
            data={"canary_id": row.id, "action": action, "evidence": evidence},
            session=session,
        )

    def probe_local(self, now: float) -> None:
        """Probe the canaries served here when their health-check interval has passed."""
        served = self.serving.deployments.values()
        routes = [(d.config.deployment_id, d.canary) for d in served]
        live = {route.canary_id for _, route in routes if route is not None}
        self._probes = {k: v for k, v in self._probes.items() if k in live}
        for deployment_id, route in routes:
            if route is None:
                continue
            check = route.health_check
            last, failures = self._probes.get(route.canary_id, (float("-inf"), 0))
            if now - last < float(check.interval):
                continue
            result = probe_runtime(route.model, timeout_s=float(check.timeout))
            failures = 0 if result.ok else failures + 1
            self._probes[route.canary_id] = (now, failures)
            if failures < check.failure_threshold:
                continue
            try:
                self.store.abort(
                    deployment_id,
                    f"{failures} consecutive failed health checks of the canary: {result.detail}",
                    actor="health-check", failed=True, evidence={"health_check": result.detail},
                )  # fmt: skip
                self.serving.apply(deployment_id)
            except NightScanError as exc:  # ended meanwhile
                log.info("canary on %s: %s", deployment_id, exc)
