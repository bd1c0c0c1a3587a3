"""Quality through a real server: /predict and /feedback move GET /quality/{deployment} and the
model_* quality series on /metrics, and both agree with scikit-learn on what was sent."""

from __future__ import annotations

import time

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import precision_recall_fscore_support

from core.auth import get_token_store

LABELS = ["owl", "hawk", "sparrow", "robin", "background"]  # as tests/monitoring/conftest.py


@pytest.fixture
def viewer() -> dict[str, str]:
    _, token = get_token_store().create("viewer", "quality-test")
    return {"Authorization": f"Bearer {token}"}


def _traffic(client, n: int = 24, labelled: int = 18) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(0)
    predicted, truth = [], []
    for i in range(n):
        audio = rng.normal(0, 0.1 + 0.05 * (i % 4), 22050).tolist()
        r = client.post("/predict", json={"audio": audio}, params={"request_id": f"q{i}"})
        assert r.status_code == 200, r.text
        if i < labelled:
            true = LABELS[i % len(LABELS)]
            f = client.post("/feedback", json={"request_id": f"q{i}", "true_label": true})
            assert f.status_code == 200, f.text
            predicted.append(r.json()["predictions"]["predicted_class"])
            truth.append(true)
    return predicted, truth


def test_quality_route_and_metrics_follow_the_feedback(client, viewer) -> None:
    predicted, truth = _traffic(client)
    p, r, f, _ = precision_recall_fscore_support(
        truth, predicted, labels=LABELS, zero_division=np.nan
    )
    for _ in range(100):  # the last unlabelled predictions reach the table within a flush (0.5 s)
        body = client.get("/quality/prod", headers=viewer, params={"window": "1h"}).json()
        [group] = body["groups"]
        if group["coverage"]["predictions"] == 24:
            break
        time.sleep(0.1)
    assert group["group"] == "wd:v1"
    assert group["coverage"]["predictions"] == 24 and group["coverage"]["labelled"] == 18
    # Registered without held-out predictions: its first hours in production are the reference.
    assert group["drift"]["reference"] == "first 3 hours in production"
    per_class = {c["label"]: c for c in group["quality"]["per_class"]}
    assert list(per_class) == LABELS  # the registered model's order
    for i, label in enumerate(LABELS):
        assert per_class[label]["recall"] == pytest.approx(r[i], nan_ok=True)
        if np.isnan(p[i]):
            assert per_class[label]["precision"] is None
        else:
            assert per_class[label]["precision"] == pytest.approx(p[i])

    text = client.get("/metrics").text
    families = {fam.name: fam.samples for fam in text_string_to_metric_families(text)}
    recall = {
        s.labels["class"]: s.value
        for s in families["model_recall"]
        if s.labels["deployment"] == "prod" and s.labels["version"] == "wd:v1"
    }
    assert recall == pytest.approx(dict(zip(LABELS, r.tolist(), strict=True)))
    [coverage] = families["model_label_coverage"]
    assert coverage.value == pytest.approx(18 / 24)
    assert "model_f1" in families and "model_precision" in families
    assert "model_prediction_drift" in families  # no look yet: the version is minutes old


@pytest.mark.parametrize(
    "path,params,status,detail",
    [
        ("/quality/nowhere", {}, 404, "deployment 'nowhere' not found"),
        ("/quality/prod", {"window": "soon"}, 422, "query.window: String should match pattern"),
        ("/quality/prod", {"version": "v9"}, 404, "no predictions of version 'v9'"),
        ("/quality/experiment/nope", {}, 404, "experiment 'nope' not found"),
    ],
)
def test_quality_route_refuses_bad_input_with_a_detail(
    client, viewer, path, params, status, detail
):
    r = client.get(path, params=params, headers=viewer)
    assert (r.status_code, detail in r.json()["detail"]) == (status, True), r.text


def test_quality_route_needs_a_viewer_token(client) -> None:
    assert client.get("/quality/prod").status_code == 401


def test_console_backends_agree_on_quality(client, served, viewer) -> None:
    """The console's local and remote backends return the same report for the same data."""
    from core.backend import LocalBackend, RemoteBackend

    _traffic(client, n=8, labelled=8)
    remote = RemoteBackend(served[0], viewer["Authorization"].split()[1])
    try:
        theirs = remote.quality("prod", window="all")
    finally:
        remote.close()
    ours = LocalBackend().quality("prod", window="all")
    for report in (ours, theirs):
        report.pop("generated_at")
    assert ours == theirs and ours["groups"][0]["coverage"]["labelled"] == 8
