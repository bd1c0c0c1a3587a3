"""Kill -9 at every commit point of every deployment transition, on SQLite and PostgreSQL, and
check the invariants afterwards (core/deployments/invariants.py).

Each transition is one transaction with a crash point on both sides of its commit
(core/deployments/crash_points.py). A subprocess performs the transition through the stores and
is killed with SIGKILL at the point; then this process reads the database as a restarted server
would. Killed before the commit, nothing of the transition may be visible; killed after it, all
of it is; either way every invariant holds and nothing needs repair.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from sqlmodel import func, select

from core import ModelMetadata, ModelStatus, get_model_registry
from core.deployments import invariants
from core.deployments.canary_store import CanaryStore
from core.deployments.config import DeploymentConfig
from core.deployments.crash_points import CRASH_ENV
from core.deployments.store import DeploymentStore
from data.canary_tables import CanaryRow
from data.deployment_tables import DeploymentRevisionRow, DeploymentRow
from data.tables import AuditRow, EventRow
from inference.architectures import build_model

MODEL, DEP = "wd", "prod"
ROOT = Path(__file__).resolve().parents[2]


def cfg(version: str, canary: bool = False) -> DeploymentConfig:
    return DeploymentConfig(
        model_id=MODEL, version=version, deployment_id=DEP, canary_deployment=canary
    )


# The transitions, as the manager and the canary controller drive them after their checks.
OPS = {
    "deploy": "store.deploy(cfg('v1'))",
    "deploy_replace": "store.deploy(cfg('v2'))",
    "failed_attempt": "store.record_failed_attempt(cfg('v2'), 'wd:v2', 'probe failed')",
    "rollback": textwrap.dedent("""
        info = store.get(DEP)
        store.rollback(DEP, expected_generation=info.generation,
                       target=store.rollback_target(DEP, info.version), config=cfg('v1'),
                       reason='health checks failed', failed=True)"""),
    "undeploy": "store.undeploy(DEP, 'done')",
    "canary_start": "canaries.start(cfg('v2', True), canary_ref='wd:v2', weight=5.0, now=0.0)",
    "canary_step": textwrap.dedent("""
        with store.transition('canary_analysis') as s:
            row = canaries.require_active(s, DEP)
            canaries.step_in(s, row, 25.0, 60.0, 'passed', 'canary-judge', {})"""),
    "canary_promote": "canaries.promote(DEP, 'passed')",
    "canary_abort": "canaries.abort(DEP, 'regressed', failed=True)",
    "canary_pause": "canaries.set_paused(DEP, True, 10.0)",
    "canary_resume": "canaries.set_paused(DEP, False, 10.0)",
}
# (operation, its transaction's name, what the database holds before it)
CASES = [
    ("deploy", "deploy", []),
    ("deploy_replace", "deploy", ["deploy"]),
    ("failed_attempt", "failed_attempt", ["deploy"]),
    ("rollback", "rollback", ["deploy", "deploy_replace"]),
    ("rollback", "rollback", ["deploy", "deploy_replace", "canary3"]),
    ("undeploy", "undeploy", ["deploy"]),
    ("undeploy", "undeploy", ["deploy", "canary_start"]),
    ("canary_start", "canary_start", ["deploy"]),
    ("canary_step", "canary_analysis", ["deploy", "canary_start"]),
    ("canary_promote", "canary_promote", ["deploy", "canary_start"]),
    ("canary_abort", "canary_abort", ["deploy", "canary_start"]),
    ("canary_pause", "canary_pause", ["deploy", "canary_start"]),
    ("canary_resume", "canary_resume", ["deploy", "canary_start", "canary_pause"]),
]
OPS["canary3"] = "canaries.start(cfg('v3', True), canary_ref='wd:v3', weight=5.0, now=0.0)"

SCRIPT = textwrap.dedent("""
    import sys
    from core import context, get_model_registry
    from core.deployments.canary_store import CanaryStore
    from core.deployments.config import DeploymentConfig
    from core.deployments.store import DeploymentStore

    MODEL, DEP = "wd", "prod"

    def cfg(version, canary=False):
        return DeploymentConfig(model_id=MODEL, version=version, deployment_id=DEP,
                                canary_deployment=canary)

    ctx = context.configure(sys.argv[1], sys.argv[2])
    store = DeploymentStore(ctx.db, get_model_registry(), ctx.audit)
    canaries = CanaryStore(store)
    exec(sys.argv[3])
    print("survived")
""")


def state(db) -> tuple:
    """Everything a transition writes, as one comparable value."""
    with db.session() as s:
        deployment = s.exec(
            select(DeploymentRow.model_id, DeploymentRow.version, DeploymentRow.status,
                   DeploymentRow.generation)
        ).all()  # fmt: skip
        canaries = s.exec(select(CanaryRow.version, CanaryRow.state, CanaryRow.weight)).all()
        revisions = s.exec(
            select(DeploymentRevisionRow.version, DeploymentRevisionRow.status)
        ).all()
        statuses = sorted((m.version, m.status) for m in get_model_registry().list_models())
        counts = [s.exec(select(func.count()).select_from(t)).one() for t in (AuditRow, EventRow)]
    return (
        sorted(deployment), sorted(canaries), sorted(revisions), statuses, counts,
    )  # fmt: skip


def run(ctx, op: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ctx.settings.home), ctx.settings.database_url, OPS[op]],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def three_versions(ctx):
    registry = get_model_registry()
    for i, version in enumerate(("v1", "v2", "v3")):
        torch.manual_seed(i)
        registry.register_model(
            build_model("small_cnn", 2),
            ModelMetadata(model_id=MODEL, version=version, status=ModelStatus.VALIDATION,
                          architecture="small_cnn", training_config={"labels": ["a", "b"]}),
        )  # fmt: skip
    return ctx


def apply_in_process(ctx, op: str) -> None:
    store = DeploymentStore(ctx.db, get_model_registry(), ctx.audit)
    exec(OPS[op], {"store": store, "canaries": CanaryStore(store), "cfg": cfg, "DEP": DEP})


@pytest.mark.slow
@pytest.mark.parametrize(
    "op,transaction,before",
    CASES,
    ids=[f"{c[0]}-after-{'-'.join(c[2]) or 'nothing'}" for c in CASES],
)
def test_kill_at_every_commit_point_keeps_the_invariants(three_versions, op, transaction, before):
    ctx = three_versions
    for earlier in before:
        apply_in_process(ctx, earlier)
    assert invariants.check(ctx.db) == []
    untouched = state(ctx.db)

    killed = run(ctx, op, f"{transaction}:before_commit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert state(ctx.db) == untouched  # nothing of an uncommitted transition is visible
    assert invariants.check(ctx.db) == []

    killed = run(ctx, op, f"{transaction}:after_commit")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    committed = state(ctx.db)
    assert committed != untouched  # all of a committed one is
    assert invariants.check(ctx.db) == []
    assert (
        invariants.check_and_repair(DeploymentStore(ctx.db, get_model_registry(), ctx.audit)) == []
    )
