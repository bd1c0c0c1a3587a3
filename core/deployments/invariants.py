"""The deployments' invariants, checked on start (a database written before every transition was
one transaction may break them) and by the crash tests after every kill:

* every version a deployment serves (stable, canary or ensemble member) is registered and neither
  RETIRED, FAILED nor deleted;
* a version is DEPLOYED in the registry exactly when some deployment serves it.

``check_and_repair`` reports each violation as an event and repairs the unambiguous ones in one
transaction: a served version that is VALIDATION, TESTING or RETIRED becomes DEPLOYED (the
deployment row is the desired state); a DEPLOYED version nothing serves becomes RETIRED. A served
version that is FAILED or deleted needs a person (roll back or undeploy), so it is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from core.events import emit
from core.lifecycle import TRANSITIONS, ModelStatus
from core.served_versions import served_versions
from data.tables import ModelVersionRow

REPAIR_ACTOR = "invariant-check"


@dataclass(frozen=True)
class Violation:
    model_ref: str
    deployments: tuple[str, ...]  # the deployments that serve it (empty: none does)
    problem: str
    repairable: bool

    def message(self, repaired: bool) -> str:
        where = f" (served by {', '.join(self.deployments)})" if self.deployments else ""
        return f"{self.model_ref}{where}: {self.problem}" + ("; repaired" if repaired else "")


def find_violations(session: Session) -> list[tuple[Violation, ModelVersionRow | None]]:
    served = served_versions(session)
    rows = {(r.model_id, r.version): r for r in session.exec(select(ModelVersionRow)).all()}
    found: list[tuple[Violation, ModelVersionRow | None]] = []
    for key, deployments in sorted(served.items()):
        ref, row = f"{key[0]}:{key[1]}", rows.get(key)
        if row is None:
            found.append((Violation(ref, tuple(deployments), "served but not registered", False),
                          None))  # fmt: skip
            continue
        status = ModelStatus(row.status)
        if status is not ModelStatus.DEPLOYED:
            fixable = ModelStatus.DEPLOYED in TRANSITIONS[status]
            problem = f"served but {status.value.upper()} in the registry"
            found.append((Violation(ref, tuple(deployments), problem, fixable), row))
    for key, row in sorted(rows.items()):
        if row.status == ModelStatus.DEPLOYED.value and key not in served:
            problem = "DEPLOYED but no deployment serves it"
            found.append((Violation(f"{key[0]}:{key[1]}", (), problem, True), row))
    return found


def check(db) -> list[Violation]:
    with db.session() as session:
        return [v for v, _ in find_violations(session)]


def check_and_repair(store) -> list[Violation]:
    """Report (and where unambiguous, repair) every violation; returns what was found. A
    healthy database costs one read (this runs whenever a deployment manager starts)."""
    if not check(store.db):
        return []
    with store.db.write() as session:
        found = find_violations(session)
        for violation, row in found:
            repaired = violation.repairable and row is not None
            if repaired:
                target = ModelStatus.DEPLOYED if violation.deployments else ModelStatus.RETIRED
                store.registry.set_status_in(
                    session, row, target, f"invariant check: {violation.problem}", REPAIR_ACTOR
                )
            emit(
                "deployment.invariant_repaired" if repaired else "deployment.invariant_violated",
                violation.message(repaired),
                source=",".join(violation.deployments) or violation.model_ref,
                severity="warning" if repaired else "critical",
                data={"model_version": violation.model_ref, "problem": violation.problem,
                      "deployments": list(violation.deployments), "repaired": repaired},
                session=session,
            )  # fmt: skip
    return [v for v, _ in found]
