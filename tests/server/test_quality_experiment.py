"""Experiments can judge per-class quality: ``recall.owl`` and ``precision.owl`` are recorded
from feedback (binary per request) and agree with the quality report per variant."""

from __future__ import annotations

import numpy as np
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


def test_macro_f1_and_class_f1_as_experiment_metrics(served, kit, sqlite_ctx) -> None:
    """macro_f1 and f1.CLASS come from the variants' labelled confusion counts: the analysis
    shows scikit-learn's numbers per variant with a bootstrap interval, never decides, and
    every face renders it."""
    from sklearn.metrics import f1_score
    from typer.testing import CliRunner

    from core.errors import ValidationError
    from core.experiments.analysis_view import AnalysisView
    from nightscan_tui.cli import app

    ab = get_ab_test_manager()
    base = {"name": "f1", "model_variants": {"control": V1, "treatment": V2},
            "traffic_allocation": {"control": 50.0, "treatment": 50.0},
            "minimum_sample_size": 10}  # fmt: skip
    with pytest.raises(ValidationError, match="macro_f1 cannot be the primary metric"):
        ab.create_experiment({**base, "experiment_id": "exp_bad", "success_metrics": ["macro_f1"]})
    ab.create_experiment(
        {**base, "experiment_id": "exp_f1", "success_metrics": ["accuracy", "macro_f1", "f1.owl"]}
    )
    ab.start_experiment("exp_f1")
    client = served.client
    sent = []
    for i in range(24):
        r = client.post(
            "/predict",
            params={"experiment_id": "exp_f1", "request_id": f"f{i}"},
            json={"audio": kit.call(seed=i).tolist()},
        )
        body = r.json()
        predicted = body["predictions"]["predicted_class"]
        truth = ("owl", "hawk", predicted)[i % 3]
        assert client.post(
            "/feedback", json={"request_id": f"f{i}", "true_label": truth}
        ).is_success
        sent.append((body["experiment_info"]["variant"], truth, predicted))

    analysis = ab.analyze_experiment("exp_f1")
    comparison = analysis["comparisons"]["treatment_vs_control"]["metric_comparisons"]
    for metric, labels in (("macro_f1", None), ("f1.owl", ["owl"])):
        c = comparison[metric]
        for variant, key in (("control", "control_mean"), ("treatment", "treatment_mean")):
            truth = [t for v, t, _ in sent if v == variant]
            pred = [p for v, _, p in sent if v == variant]
            average = "macro" if labels is None else None
            expected = f1_score(truth, pred, labels=labels, average=average, zero_division=0)
            expected = float(np.atleast_1d(expected)[0])
            assert c[key] == pytest.approx(expected), (metric, variant)
            assert c[f"{variant}_n"] == len(truth)
        assert (c["significant"], c["winner"], c["sequential"]) == (False, None, None)
        assert c["difference_ci"] is None or c["difference_ci"][0] <= c["absolute_difference"]
    view = AnalysisView.from_dict(analysis)
    counted = {r.metric for r in view.comparisons[0].metrics if r.counted}
    assert counted == {"macro_f1", "f1.owl"}
    result = CliRunner().invoke(app, ["experiment", "analyze", "exp_f1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    from rich.console import Console

    from screens.panels.experiment_detail import metric_table
    from screens.tones import Tones

    console = Console(width=200, record=True)
    console.print(metric_table(view.comparisons[0], Tones(*[None] * 6)))
    panel = console.export_text()
    assert panel.count("bootstrap CI") == 2 and "macro_f1" in panel  # the console's table
    words = " ".join(result.output.split())  # the caption wraps
    assert "macro_f1" in words and "bootstrap interval (fixed-horizon), never decisive" in words
