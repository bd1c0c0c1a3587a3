"""The canary stepper, run on every supervisor tick (see canary.py for the states and rules).

``tick`` flushes this process's observations, runs every analysis that is due and probes the
canaries served here. An analysis happens once per interval across all processes: it runs in a
write transaction that re-reads the canary row (locked on PostgreSQL; SQLite serialises writers)
and moves ``next_analysis_at`` forward. The judge's verdict updates the counters, and
``decide`` turns them into an action: stay, step up, promote, or abort.

A canary that hangs or always raises may never produce a judged request, so it is also probed
like a deployment (a real inference, its ``health_check`` interval, timeout and threshold on the
controller's clock): ``failure_threshold`` consecutive failed probes abort it as FAILED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlmodel import col, delete, select

from core import events
from core.deployments.canary_data import arms_from_batches
from core.deployments.canary_judge import FAIL, PASS, JudgeSettings, Verdict, judge
from core.deployments.config import DeploymentConfig
from core.deployments.probe import probe_runtime
from core.errors import NightScanError
from data.canary_tables import CanaryCheckRow, CanaryRow, CanarySampleRow
from data.types import utcnow

if TYPE_CHECKING:
    from core.deployments.canary_data import CanaryObservations
    from core.deployments.canary_store import CanaryStore
    from core.deployments.serving import LocalServing

log = logging.getLogger(__name__)
JUDGE = "canary-judge"  # the actor of automatic steps, promotions and aborts


def step_seconds(config: DeploymentConfig) -> float:
    """Time at each weight: explicit, or ``canary_duration_hours`` over the weights below 100."""
    explicit = config.canary.step_seconds
    if explicit is not None:
        return float(explicit)
    below = [s for s in list(config.canary.steps) if s < 100] or [0]
    return config.canary_duration_hours * 3600.0 / len(below)


def next_weight(config: DeploymentConfig, weight: float) -> float:
    return next((float(s) for s in list(config.canary.steps) if s > weight), 100.0)


def decide(row: CanaryRow, config: DeploymentConfig, verdict: Verdict, now: float):
    """Count the verdict on the row; returns (action, target weight), action one of
    "" (stay), "stepped", "promoted", "aborted"."""
    if verdict.outcome == PASS:
        row.passes += 1
        row.consecutive_failures = 0
    elif verdict.outcome == FAIL:
        row.fails += 1
        row.consecutive_failures += 1
    else:  # INCONCLUSIVE neither helps nor hurts
        row.inconclusive += 1
    if row.consecutive_failures >= int(config.canary.failure_threshold):
        return "aborted", 0.0
    if verdict.outcome != PASS or now - row.step_started_at < step_seconds(config):
        return "", row.weight
    if row.passes / (row.passes + row.fails) < config.canary_success_threshold:
        return "", row.weight
    target = next_weight(config, row.weight)
    return ("promoted" if target >= 100 else "stepped"), target


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
        c = self
        c.observations.flush()
        now = c.clock()
        with c.store.db.session() as session:
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

    def analyze(self, canary_id: int, now: float | None = None) -> Verdict | None:
        """One analysis: judge the unconsumed batches, record, and step, promote or abort."""
        c = self
        now = c.clock() if now is None else now
        with c.store.deployments.transition("canary_analysis") as session:
            row = session.exec(
                select(CanaryRow).where(CanaryRow.id == canary_id).with_for_update()
            ).first()
            if row is None or row.state != "progressing" or row.next_analysis_at > now:
                return None  # another process analysed it, or it ended
            config = DeploymentConfig.from_dict(row.config)
            batches = session.exec(
                select(CanarySampleRow)
                .where(
                    CanarySampleRow.canary_id == canary_id,
                    col(CanarySampleRow.id) > row.consumed_sample_id,
                )
                .order_by(col(CanarySampleRow.id))
            ).all()
            settings = JudgeSettings.from_config(config.canary)
            verdict = judge(*arms_from_batches(list(batches), canary_id), settings)
            action, target = decide(row, config, verdict, now)
            if verdict.outcome in (PASS, FAIL) and batches:  # INCONCLUSIVE: data carries over
                row.consumed_sample_id = batches[-1].id
                session.exec(
                    delete(CanarySampleRow).where(
                        CanarySampleRow.canary_id == canary_id,
                        col(CanarySampleRow.id) <= row.consumed_sample_id,
                    )
                )
            evidence = {**verdict.to_dict(), "weight": row.weight, "batches": len(batches)}
            row.checks += 1
            row.last_verdict = evidence
            row.next_analysis_at = now + float(config.canary.analysis_interval_s)
            row.updated_at = utcnow()
            session.add(CanaryCheckRow(
                canary_id=canary_id, weight=row.weight, verdict=verdict.outcome,
                action=action, reason=verdict.reason, evidence=evidence,
            ))  # fmt: skip
            events.emit(
                "canary.analysis",
                f"{row.deployment_id}: {verdict.outcome} at {row.weight:g}%: {verdict.reason}",
                source=row.deployment_id,
                severity="warning" if verdict.outcome == FAIL else "info",
                data={"canary_id": canary_id, "action": action, "evidence": evidence},
                session=session,
            )
            session.add(row)
            if action == "stepped":
                row.passes = row.fails = row.inconclusive = 0
                c.store.step_in(session, row, target, now, verdict.reason, JUDGE, evidence)
            elif action == "promoted":
                c.store.promote_in(
                    session, row, f"passed every step ({verdict.reason})", JUDGE, evidence
                )
            elif action == "aborted":
                failures = config.canary.failure_threshold
                c.store.abort_in(
                    session, row, f"{failures} consecutive failed analyses: {verdict.reason}",
                    JUDGE, failed=True, evidence=evidence,
                )  # fmt: skip
            deployment_id = row.deployment_id
        if action:
            c.serving.apply(deployment_id)
        return verdict

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
            if failures < int(check.failure_threshold):
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
