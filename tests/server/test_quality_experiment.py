"""Experiments can judge per-class quality: ``recall.owl`` and ``precision.owl`` are recorded
from feedback (binary per request) and agree with the quality report per variant."""

from __future__ import annotations

import pytest

from core import get_ab_test_manager
from core.auth import get_token_store
from core.quality.service import QualityService
from core.quality.store import Scope

V1, V2 = "wildlife_detector:v1.0.0", "wildlife_detector:v2.0.0"


def test_class_recall_and_precision_as_experiment_metrics(served, kit, sqlite_ctx) -> None:
    ab = get_ab_test_manager()
    ab.create_experiment(
        {
            "experiment_id": "exp_owls",
            "name": "owl recall",
            "model_variants": {"control": V1, "treatment": V2},
            "traffic_allocation": {"control": 50.0, "treatment": 50.0},
            "success_metrics": ["recall.owl", "precision.owl", "accuracy"],
            "minimum_sample_size": 10,
        }
    )
    assert ab.get_experiment("exp_owls").config.metric_specs()["recall.owl"].kind == "binary"
    ab.start_experiment("exp_owls")
    client = served.client
    sent = []
    for i in range(16):
        r = client.post(
            "/predict",
            params={"experiment_id": "exp_owls", "request_id": f"o{i}"},
            json={"audio": kit.call(seed=i).tolist()},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        predicted = body["predictions"]["predicted_class"]
        truth = "owl" if i % 2 == 0 else predicted  # half are owls, the rest confirmed
        fb = client.post("/feedback", json={"request_id": f"o{i}", "true_label": truth})
        assert fb.status_code == 200
        sent.append((body["experiment_info"]["variant"], truth, predicted))

    status = ab.get_experiment_status("exp_owls")["results"]
    report = QualityService(sqlite_ctx.db).report(
        Scope(experiment_id="exp_owls", split_by="variant"), drift=False
    )
    for variant in ("control", "treatment"):
        mine = [(t, p) for v, t, p in sent if v == variant]
        owls = [(t, p) for t, p in mine if t == "owl"]
        assert status[variant]["recall.owl"] == len(owls)
        assert status[variant]["precision.owl"] == sum(1 for _, p in mine if p == "owl")
        if owls:
            owl = report.group(variant).quality.per_class[0]
            assert owl.label == "owl"
            assert owl.recall == pytest.approx(sum(p == "owl" for _, p in owls) / len(owls))

    _, token = get_token_store().create("viewer", "analyst")
    body = client.get(
        "/quality/experiment/exp_owls", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert {g["group"]: g["coverage"]["labelled"] for g in body["groups"]} == {
        v: sum(1 for s in sent if s[0] == v) for v in ("control", "treatment")
    }
