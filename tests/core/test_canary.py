"""Canary rollouts on a real SQLite database with real (tiny, untrained) models: stepped
promotion, abort of a failing or slow canary, an inconclusive canary that waits, sticky routing,
restore after a restart, manual control and the CLI. Time is a fake clock advanced by hand and
the stepper runs through ``tick()``, so no assertion depends on wall time."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from sqlmodel import select
from typer.testing import CliRunner

from core import ConflictError, ModelMetadata, ModelStatus, ValidationError, context
from core import get_model_registry as registry
from core.deployments import DeploymentConfig, DeploymentManager, get_deployment_manager
from core.events import recent_events
from data.canary_tables import CanarySampleRow
from inference.architectures import build_model
from inference.synthetic import generate_call
from nightscan_tui.cli import app

MODEL = "wildlife_detector"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
DEP = "wd_prod"
V1, V2 = f"{MODEL}:v1.0.0", f"{MODEL}:v2.0.0"
AUDIO = generate_call("owl", np.random.default_rng(0), seconds=1.0)
# Small numbers so tests need few requests. Wall-clock latency on a shared 2-core box is noisy,
# so tests that are not about latency tolerate a lot of it (the judge's own tests cover it).
FAST = {"analysis_interval_s": 10, "step_seconds": 15, "min_samples": 20, "min_feedback": 10,
        "calibration_samples": 20}  # fmt: skip
CALM = {**FAST, "latency_margin_ms": 1000.0}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def flaky(models_module: ModuleType) -> ModuleType:
    """The shared test model package (tests/conftest.py): ``flaky`` fails or sleeps on demand."""
    return models_module


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mgr(sqlite_ctx, clock: Clock) -> DeploymentManager:
    m = get_deployment_manager()
    m.canaries.clock = clock
    return m


def register(version: str, architecture: str = "small_cnn", seed: int = 0) -> None:
    torch.manual_seed(seed)
    meta = ModelMetadata(
        model_id=MODEL, version=version, status=ModelStatus.VALIDATION,
        architecture=architecture, training_config={"labels": LABELS},
    )  # fmt: skip
    registry().register_model(build_model(architecture, len(LABELS)), meta)


def status_of(version: str) -> ModelStatus:
    return registry().get_model(MODEL, version).status


def start(mgr, canary: dict[str, Any], architecture: str = "small_cnn", weight=5.0, **kw) -> None:
    register("v1.0.0")
    register("v2.0.0", architecture, seed=1)
    mgr.deploy_model(DeploymentConfig(model_id=MODEL, version="v1.0.0", deployment_id=DEP))
    mgr.deploy_model(
        DeploymentConfig(
            model_id=MODEL,
            version="v2.0.0",
            deployment_id=DEP,
            canary_deployment=True,
            traffic_percentage=weight,
            canary=canary,
            **kw,
        )  # fmt: skip
    )


_ids = itertools.count()


def unit_ids(mgr, arm: str, n: int) -> list[str]:
    """Request ids that the deployment's current route sends to ``arm``."""
    route = mgr.pool.deployments[DEP].canary
    ids: list[str] = []
    while len(ids) < n:
        rid = f"r{next(_ids)}"
        if route.takes(rid) == (arm == "canary"):
            ids.append(rid)
    return ids


def send(mgr, canary: int, stable: int, feedback: bool = False) -> list[Any]:
    ids = unit_ids(mgr, "canary", canary) + unit_ids(mgr, "stable", stable)

    async def run() -> list[Any]:
        calls = [mgr.run_inference(AUDIO, request_id=r) for r in ids]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    for r in results:
        if feedback and isinstance(r, dict):  # ground truth equal to the prediction
            mgr.record_feedback(r["request_id"], r["predictions"]["predicted_class"])
    return results


def analyse(mgr, clock: Clock, seconds: float = 10) -> dict[str, Any]:
    clock.now += seconds
    mgr.tick()  # the supervisor's tick: reconcile, probes, ..., canary flush and analysis
    return mgr.canaries.status(DEP)


def kinds(prefix: str = "canary.") -> list[str]:
    return [e.kind for e in reversed(recent_events(kind=prefix, limit=100))]


# ---- promotion ----------------------------------------------------------------------------


def test_canary_is_promoted_in_steps(sqlite_ctx, mgr, clock) -> None:
    start(mgr, CALM)
    status = mgr.canaries.status(DEP)
    assert (status["state"], status["weight"], status["steps"]) == ("progressing", 5.0,
                                                                    [5, 25, 50, 100])  # fmt: skip
    assert mgr.get_deployment(DEP).version == "v1.0.0"  # stable until promoted
    assert status_of("v2.0.0") is ModelStatus.DEPLOYED  # a canary share is served: DEPLOYED
    assert mgr.get_status(DEP)["canary"]["canary"] == V2

    weights = []
    for _ in range(6):
        results = send(mgr, 20, 20, feedback=True)
        assert all(isinstance(r, dict) for r in results)
        assert {r["model_version"] for r in results} == {V1, V2}
        status = analyse(mgr, clock)
        weights.append(status["weight"])
        assert status["last_verdict"]["verdict"] != "FAIL", (weights, status["last_verdict"])
    # Each weight holds for step_seconds (15 s): the look at 10 s holds, the next one steps.
    assert weights == [5.0, 25.0, 25.0, 50.0, 50.0, 100.0]
    assert status["state"] == "promoted"
    checks = {c["metric"]: c for c in status["last_verdict"]["checks"]}
    assert checks["accuracy"]["n_canary"] >= 10  # feedback was judged too
    assert status["requests"] == {"stable": 120, "canary": 120}  # the whole rollout counts

    info = mgr.get_deployment(DEP)
    assert info.version == "v2.0.0" and info.reason.startswith("canary promoted")
    assert status_of("v2.0.0") is ModelStatus.DEPLOYED
    assert status_of("v1.0.0") is ModelStatus.RETIRED
    revisions = [(r.version, r.status) for r in mgr.revisions(DEP)]
    assert revisions == [("v1.0.0", "replaced"), ("v2.0.0", "active")]
    assert mgr.pool.deployments[DEP].canary is None
    assert {r["model_version"] for r in send_plain(mgr, 10)} == {V2}

    assert kinds() == ["canary.started", *["canary.analysis"] * 2, "canary.stepped",
                       *["canary.analysis"] * 2, "canary.stepped", *["canary.analysis"] * 2,
                       "canary.promoted"]  # fmt: skip
    stepped = recent_events(kind="canary.stepped")
    assert [(e.data["from"], e.data["weight"]) for e in reversed(stepped)] == [(5, 25), (25, 50)]
    assert stepped[0].data["evidence"]["verdict"] in ("PASS", "INCONCLUSIVE")
    promoted = recent_events(kind="canary.promoted")[0]
    assert promoted.data["evidence"]["checks"] and promoted.source == DEP
    actions = [a.action for a in reversed(sqlite_ctx.audit.entries(action="canary."))]
    assert actions == ["canary.start", "canary.step", "canary.step", "canary.promote"]
    assert sqlite_ctx.audit.entries(action="canary.promote")[0].actor == "canary-judge"


def send_plain(mgr, n: int) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return await asyncio.gather(*(mgr.run_inference(AUDIO) for _ in range(n)))

    return asyncio.run(run())


# ---- abort --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    # 0.5 s: far beyond the stable arm's latencies even on a loaded 2-core machine.
    ("state", "metric"),
    [({"fail": True}, "error_rate"), ({"delay": 0.5}, "latency")],
)
def test_failing_or_slow_canary_is_aborted(
    sqlite_ctx, mgr, clock, flaky, state: dict[str, Any], metric: str
) -> None:
    start(mgr, {**FAST, "latency_margin_ms": 20.0}, architecture=f"{flaky.__name__}:flaky")
    flaky.STATE.update(state)  # after the deploy's own checks passed

    # The first look also fixes the latency threshold from the stable arm's first latencies.
    for _ in range(6):
        results = send(mgr, 40, 40)
        status = analyse(mgr, clock)
        if status["state"] != "progressing":
            break
    if "fail" in state:
        assert sum(isinstance(r, Exception) for r in results) == 40  # the canary's share failed
    assert status["state"] == "aborted" and status["weight"] == 0, [
        (
            c["metric"],
            c["outcome"],
            c.get("stable"),
            c.get("canary"),
            c.get("cs_low"),
            c["n_stable"],
            c["n_canary"],
            c["detail"],
        )
        for c in status["last_verdict"]["checks"]
    ]
    assert status["reason"].startswith("canary worse beyond the margin on")
    assert status["last_verdict"]["verdict"] == "FAIL"

    checks = {c["metric"]: c for c in status["last_verdict"]["checks"]}
    assert (
        checks[metric]["outcome"] == "worse" and checks[metric]["cs_low"] > checks[metric]["margin"]
    )
    aborted = recent_events(kind="canary.aborted")[0]
    assert aborted.severity == "critical"
    evidence = {c["metric"]: c for c in aborted.data["evidence"]["checks"]}
    assert evidence[metric]["outcome"] == "worse"
    assert status_of("v2.0.0") is ModelStatus.FAILED
    assert status_of("v1.0.0") is ModelStatus.DEPLOYED
    assert mgr.get_deployment(DEP).version == "v1.0.0"
    assert mgr.revisions(DEP)[-1].status == "failed"
    assert mgr.pool.deployments[DEP].canary is None
    flaky.STATE.update(fail=False, delay=0.0)
    assert {r["model_version"] for r in send_plain(mgr, 10)} == {V1}  # all traffic on stable
    entry = sqlite_ctx.audit.entries(action="canary.abort")[0]
    assert entry.actor == "canary-judge" and entry.after["evidence"]["verdict"] == "FAIL"


def test_canary_failing_its_health_checks_is_aborted_without_traffic(mgr, clock, flaky) -> None:
    # A canary that hangs or always raises may never complete a judged request: it is probed.
    health_check = {"interval": 5, "timeout": 5, "failure_threshold": 2}
    start(mgr, FAST, architecture=f"{flaky.__name__}:flaky", health_check=health_check)
    flaky.STATE["fail"] = True
    assert analyse(mgr, clock, 5)["state"] == "progressing"  # one failed probe
    status = analyse(mgr, clock, 5)
    assert status["state"] == "aborted"
    assert status["reason"].startswith("2 consecutive failed health checks of the canary")
    assert "forward failed" in status["reason"]
    assert status_of("v2.0.0") is ModelStatus.FAILED
    event = recent_events(kind="canary.aborted")[0]
    assert "forward failed" in event.data["evidence"]["health_check"]
    assert mgr.pool.deployments[DEP].canary is None


# ---- inconclusive -------------------------------------------------------------------------


def test_inconclusive_never_aborts_and_promotion_waits_for_min_samples(mgr, clock, flaky) -> None:
    start(mgr, FAST, architecture=f"{flaky.__name__}:flaky")
    flaky.STATE["fail"] = True  # a broken canary, but with too little traffic to tell
    for _ in range(6):
        send(mgr, 2, 2)
        status = analyse(mgr, clock)
        assert status["last_verdict"]["verdict"] == "INCONCLUSIVE"
    # The schedule moved the weight on; the evidence never sufficed to abort; and the promotion
    # waits until the canary has served min_samples (20) requests.
    assert (status["state"], status["weight"], status["fails"]) == ("progressing", 50.0, 0)
    assert status["last_verdict"]["reason"].startswith("promotion waits for 20 canary requests")
    assert status["inconclusive"] == 6
    assert status_of("v2.0.0") is ModelStatus.DEPLOYED
    assert recent_events(kind="canary.aborted") == []


def test_every_window_is_counted_once_over_the_whole_rollout(sqlite_ctx, mgr, clock) -> None:
    start(mgr, CALM)
    for _ in range(3):
        send(mgr, 8, 8)
        status = analyse(mgr, clock)
    assert status["requests"] == {"stable": 24, "canary": 24}
    assert status["last_verdict"]["batches"] >= 2  # both arms' batches of the last window
    with sqlite_ctx.db.session() as session:  # consumed: no batch is folded in twice
        assert session.exec(select(CanarySampleRow)).all() == []
    assert status["weight"] == 25.0  # 30 s at 5 %: stepped on schedule


# ---- routing ------------------------------------------------------------------------------


def test_split_within_sampling_error_sticky_and_monotonic(mgr, clock) -> None:
    start(mgr, CALM)
    dep = mgr.pool.deployments[DEP]
    served = mgr.pool.models[dep.model_ref]
    ids = [f"user-{i}" for i in range(20_000)]

    def arms() -> list[bool]:
        d = mgr.pool.deployments[DEP]
        return [mgr.canaries.route(d, served, u)[1][1] == "canary" for u in ids]

    at5 = arms()
    share = sum(at5) / len(ids)
    assert abs(share - 0.05) < 4 * (0.05 * 0.95 / len(ids)) ** 0.5
    assert dep.traffic_split() == {V1: 95.0, V2: 5.0}
    # A user id keeps a user on one arm whatever the request id.
    user = next(u for u, c in zip(ids, at5, strict=True) if c)
    results = [asyncio.run(mgr.run_inference(AUDIO, request_id=f"q{i}", user_id=user))
               for i in range(3)]  # fmt: skip
    assert {r["model_version"] for r in results} == {V2}

    send(mgr, 20, 20)
    analyse(mgr, clock, 20)  # PASS after the step time: 5 % -> 25 %
    at25 = arms()
    assert abs(sum(at25) / len(ids) - 0.25) < 4 * (0.25 * 0.75 / len(ids)) ** 0.5
    # Growing the weight only adds units: nobody on the canary goes back to stable.
    assert all(b for a, b in zip(at5, at25, strict=True) if a)


def test_restart_restores_the_split(sqlite_ctx, mgr, clock) -> None:
    start(mgr, CALM, weight=25.0)
    probe = [f"u{i}" for i in range(300)]
    before = [mgr.pool.deployments[DEP].canary.takes(u) for u in probe]
    home, url = sqlite_ctx.settings.home, sqlite_ctx.settings.database_url
    fresh = context.configure(home, url)  # closes the old manager (a restart)
    try:
        restarted = get_deployment_manager()
        restarted.reconcile()
        route = restarted.pool.deployments[DEP].canary
        assert route is not None and route.weight == 25.0 and route.model.model_ref == V2
        assert [route.takes(u) for u in probe] == before
        canary_user = probe[before.index(True)]
        stable_user = probe[before.index(False)]
        for user, version in ((canary_user, V2), (stable_user, V1)):
            result = asyncio.run(restarted.run_inference(AUDIO, user_id=user))
            assert result["model_version"] == version
    finally:
        fresh.close()


def test_counts_since_the_last_tick_survive_a_shutdown(sqlite_ctx, mgr, clock) -> None:
    start(mgr, CALM, weight=25.0)
    send(mgr, canary=3, stable=5)  # counted in memory; no tick flushed them
    home, url = sqlite_ctx.settings.home, sqlite_ctx.settings.database_url
    fresh = context.configure(home, url)  # closes the old manager (a shutdown)
    try:
        with fresh.db.session() as session:
            rows = session.exec(select(CanarySampleRow)).all()
        counted = {
            arm: sum(r.requests for r in rows if r.arm == arm) for arm in ("canary", "stable")
        }
        assert counted == {"canary": 3, "stable": 5}
    finally:
        fresh.close()


# ---- manual control and guards ------------------------------------------------------------


def test_pause_resume_and_manual_promote(sqlite_ctx, mgr, clock) -> None:
    start(mgr, CALM)
    mgr.canaries.pause(DEP)
    with pytest.raises(ConflictError, match="already paused"):
        mgr.canaries.pause(DEP)
    send(mgr, 20, 20)
    status = analyse(mgr, clock, 60)
    assert status["state"] == "paused" and status["checks"] == 0  # nothing judged
    assert mgr.pool.deployments[DEP].canary.weight == 5.0  # the weight holds
    mgr.canaries.resume(DEP)
    status = analyse(mgr, clock)
    assert status["last_verdict"]["verdict"] == "INCONCLUSIVE"  # paused traffic was dropped
    mgr.canaries.promote(DEP, "looks fine", actor="alice")
    assert mgr.get_deployment(DEP).version == "v2.0.0"
    assert status_of("v2.0.0") is ModelStatus.DEPLOYED
    assert kinds() == ["canary.started", "canary.paused", "canary.resumed", "canary.analysis",
                       "canary.promoted"]  # fmt: skip
    assert sqlite_ctx.audit.entries(action="canary.promote")[0].actor == "alice"
    with pytest.raises(ConflictError, match="no canary is running"):
        mgr.canaries.abort(DEP)


def test_manual_abort_keeps_the_version_status_and_guards_deploys(mgr, clock) -> None:
    start(mgr, CALM)
    with pytest.raises(ConflictError, match="promote or abort it first"):
        mgr.deploy_model(DeploymentConfig(model_id=MODEL, version="v2.0.0", deployment_id=DEP))
    mgr.canaries.abort(DEP, "changed my mind")
    assert status_of("v2.0.0") is ModelStatus.RETIRED  # manual: served no more, not FAILED
    assert mgr.revisions(DEP)[-1].status == "aborted"
    assert recent_events(kind="canary.aborted")[0].severity == "warning"
    # A new canary of the same version may start again; undeploying ends it.
    mgr.deploy_model(
        DeploymentConfig(
            model_id=MODEL,
            version="v2.0.0",
            deployment_id=DEP,
            canary_deployment=True,
            traffic_percentage=10,
            canary=CALM,
        )  # fmt: skip
    )
    assert mgr.canaries.status(DEP)["weight"] == 10.0
    mgr.undeploy(DEP, reason="maintenance")
    assert mgr.canaries.status(DEP)["state"] == "aborted"


def test_canary_config_is_validated() -> None:
    for canary, message in (
        ({"steps": [5, 50]}, "canary.steps must be increasing"),
        ({"steps": [50, 25, 100]}, "canary.steps must be increasing"),
        ({"failure_threshold": 0}, "canary.failure_threshold"),
        ({"min_samples": 1}, "canary.min_samples"),
        ({"interval": 5}, "unknown canary keys: interval"),
    ):
        with pytest.raises(ValidationError, match=message):
            DeploymentConfig(model_id=MODEL, version="v1", canary=canary).validate()


# ---- CLI ----------------------------------------------------------------------------------


def test_cli_deploy_canary_status_pause_resume_abort(sqlite_ctx) -> None:
    register("v1.0.0")
    register("v2.0.0", seed=1)
    runner = CliRunner()

    def nightscan(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "120"})

    assert nightscan("deploy", MODEL, "v1.0.0", "--deployment-id", DEP).exit_code == 0
    result = nightscan("deploy", MODEL, "v2.0.0", "--deployment-id", DEP, "--canary",
                       "--traffic", "5")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(nightscan("canary", "status", DEP, "--json").output)
    assert (data["state"], data["weight"], data["canary"]) == ("progressing", 5.0, V2)
    text = nightscan("canary", "status", DEP).output
    assert "progressing" in text and V2 in text
    assert "paused" in nightscan("canary", "pause", DEP).output
    assert "resumed" in nightscan("canary", "resume", DEP).output
    assert V2 in nightscan("canary", "list").output
    assert "aborted" in nightscan("canary", "abort", DEP, "--reason", "cli test").output
    result = nightscan("canary", "promote", DEP)
    assert result.exit_code == 4 and "no canary is running" in result.output
    assert "Traceback" not in result.output
    result = nightscan("canary", "status", "nope")
    assert result.exit_code == 3 and "no canary has run" in result.output


# ---- quality metrics from feedback -----------------------------------------------------------


def test_a_canary_judged_on_a_class_recall_reads_the_arms_confusion_counts(mgr, clock) -> None:
    """recall.CLASS is judged from the quality rollup's per-arm confusion counts: labelling every
    request with the stable arm's prediction makes the stable arm's recall of that class 1 and
    the canary's the share of those it also predicts; the check counts exactly the labelled
    items of that class per arm."""
    register("v1.0.0")
    mgr.deploy_model(DeploymentConfig(model_id=MODEL, version="v1.0.0", deployment_id=DEP))
    v1_class = asyncio.run(mgr.run_inference(AUDIO))["predictions"]["predicted_class"]
    register("v2.0.0", seed=1)
    canary = {**CALM, "quality_metrics": [f"recall.{v1_class}", "macro_f1"], "min_feedback": 5}
    mgr.deploy_model(DeploymentConfig(model_id=MODEL, version="v2.0.0", deployment_id=DEP,
                                      canary_deployment=True, traffic_percentage=50,
                                      canary=canary))  # fmt: skip
    results = send(mgr, 12, 12)
    for r in results:
        mgr.record_feedback(r["request_id"], v1_class)
    canary_hits = sum(
        r["predictions"]["predicted_class"] == v1_class for r in results if r["model_version"] == V2
    )
    status = analyse(mgr, clock)
    checks = {c["metric"]: c for c in status["last_verdict"]["checks"]}
    recall = checks[f"recall.{v1_class}"]
    assert (recall["n_stable"], recall["n_canary"]) == (12, 12)
    assert recall["stable"] == 1.0 and recall["canary"] == pytest.approx(canary_hits / 12)
    assert checks["macro_f1"]["n_stable"] == 12
    assert recall["alpha"] == pytest.approx(0.05 / 5)  # two quality metrics share the alpha
    assert status["state"] == ("aborted" if canary_hits == 0 else "progressing")
    # A second analysis counts only what is new: the state already holds these counts.
    send(mgr, 3, 0)  # unlabelled: no new recall evidence
    status = analyse(mgr, clock)
    checks = {c["metric"]: c for c in status["last_verdict"]["checks"]}
    assert (checks[f"recall.{v1_class}"]["n_stable"], checks["macro_f1"]["n_canary"]) == (12, 12)


def test_canary_quality_metrics_are_validated(mgr) -> None:
    with pytest.raises(ValidationError, match="unknown quality metric 'recal.owl'"):
        DeploymentConfig(model_id=MODEL, version="v1", canary={"quality_metrics": ["recal.owl"]})
    with pytest.raises(ValidationError, match="unknown class in recall.zebra"):
        start(mgr, {**CALM, "quality_metrics": ["recall.zebra"]})
    assert mgr.canaries.active(DEP) is None


def test_cli_deploy_canary_with_quality_metrics(sqlite_ctx, clock) -> None:
    register("v1.0.0")
    register("v2.0.0", seed=1)
    runner = CliRunner()

    def nightscan(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})

    # A first deploy has no stable to canary against, but its canary metrics are still checked.
    first = ("deploy", MODEL, "v1.0.0", "--deployment-id", DEP, "--canary")
    result = nightscan(*first, "--canary-metric", "recall.zebra")
    assert result.exit_code != 0 and "unknown class in recall.zebra" in result.output
    assert get_deployment_manager().list_deployments() == []
    assert nightscan("deploy", MODEL, "v1.0.0", "--deployment-id", DEP).exit_code == 0
    canary = ("deploy", MODEL, "v2.0.0", "--deployment-id", DEP, "--canary", "--traffic", "50")
    result = nightscan(*canary, "--canary-metric", "recall.zebra")
    assert result.exit_code != 0 and "unknown class in recall.zebra" in result.output
    assert "Traceback" not in result.output
    result = nightscan(*canary, "--canary-metric", "recal.owl")
    assert result.exit_code != 0 and "unknown quality metric 'recal.owl'" in result.output
    result = nightscan(*canary, "--canary-metric", "recall.owl", "--canary-metric", "macro_f1")
    assert result.exit_code == 0, result.output
    data = json.loads(nightscan("canary", "status", DEP, "--json").output)
    assert (data["quality_metrics"], data["quality_margin"]) == (["recall.owl", "macro_f1"], 0.05)
    mgr = get_deployment_manager()
    clock.now = time.time()  # the CLI started the canary on the real clock
    mgr.canaries.clock = clock
    for r in send(mgr, 40, 40):
        mgr.record_feedback(r["request_id"], "owl")
    analyse(mgr, clock, seconds=3600)
    text = nightscan("canary", "status", DEP).output
    assert "recall.owl, macro_f1 from labelled feedback" in text
    assert "macro_f1" in text and "sequences at" in text  # the F1 bounds' evidence line
    from screens.tones import Tones
    from screens.widgets.live_panel import canary_block

    panel = canary_block(mgr.canaries.status(DEP), Tones(*[None] * 6)).plain  # the console
    assert "quality from labelled feedback: recall.owl, macro_f1 (margin 0.05 each)" in panel
