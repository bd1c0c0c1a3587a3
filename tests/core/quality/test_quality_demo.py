"""The demo's quality story: v2.1.1 is worse on owls only, and the traffic simulator's
feedback (with its per-class label noise) moves the staging deployment's numbers."""

from __future__ import annotations

import time

import pytest

from core.demo_quality import BASE, DEMO_MODEL, STAGING_DEPLOYMENT, WEAK, seed_owl_regression
from core.training import train_and_register


@pytest.fixture
def staging(sqlite_ctx):
    train_and_register(DEMO_MODEL, BASE, epochs=3, samples_per_class=24, seed=2)
    assert seed_owl_regression() is True
    assert seed_owl_regression() is False  # idempotent: nothing missing any more
    return sqlite_ctx


def test_weak_version_loses_owls_and_nothing_else(staging) -> None:
    from core import get_model_registry

    comparison = get_model_registry().compare_models((DEMO_MODEL, BASE), (DEMO_MODEL, WEAK))
    per_class = comparison["per_class"]
    owl = per_class["owl"]["recall"]
    assert owl["model_b"] <= owl["model_a"] / 2 + 1e-9 and owl["model_a"] > 0
    for label, metrics in per_class.items():
        if label != "owl":  # a lower owl logit can only move predictions away from owl
            assert metrics["recall"]["model_b"] >= metrics["recall"]["model_a"] - 1e-9
    # Its drift reference is its own held-out predictions: fewer owls predicted than the base.
    refs = [get_model_registry().get_model(DEMO_MODEL, v).training_config["held_out_reference"]
            for v in (BASE, WEAK)]  # fmt: skip
    assert refs[1]["predicted"]["owl"] < refs[0]["predicted"]["owl"]
    assert sum(refs[1]["predicted"].values()) == sum(refs[1]["confidence_bins"])


def test_simulated_feedback_moves_the_staging_quality(staging) -> None:
    from core.quality.service import QualityService
    from core.quality.store import Scope
    from core.server.runner import BackgroundServer
    from core.traffic import TrafficSimulator

    server = BackgroundServer(port=0).start()
    sim = TrafficSimulator(
        server.url, rate_per_s=50, deployment_id=STAGING_DEPLOYMENT, clips=10,
        label_noise={"robin": 1.0},  # every robin is labelled as something else
    ).start()  # fmt: skip
    service = QualityService(staging.db)
    try:
        for _ in range(600):  # bounded: at most a minute on a loaded machine
            report = service.report(Scope(deployment_id=STAGING_DEPLOYMENT), drift=False)
            if report.groups and report.groups[0].coverage.labelled >= 30:
                break
            time.sleep(0.1)
    finally:
        sim.stop()
        server.stop()
    [group] = report.groups
    assert group.group == f"{DEMO_MODEL}:{WEAK}"
    q = group.quality
    robin = q.labels.index("robin")
    assert sum(q.confusion[robin]) == 0  # no robin survives as a true label
    assert q.labelled >= 30 and group.coverage.labelled == q.labelled
