"""/metrics in the Prometheus text format, and the shipped alert rules, checked by promtool
when it is installed (Debian package `prometheus`; .ci/run installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)


def _scrape(client) -> dict[str, list]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {f.name: f.samples for f in text_string_to_metric_families(r.text)}, r.text


def test_metrics_expose_the_series_the_alert_rules_use(client):
    audio = np.random.default_rng(0).normal(0, 0.1, 22050).tolist()
    for i in range(5):
        r = client.post("/predict", json={"audio": audio}, params={"request_id": f"r{i}"})
        assert r.status_code == 200
    families, _ = _scrape(client)
    p95 = {s.labels["deployment"]: s.value for s in families["model_inference_latency_p95"]}
    assert p95["prod"] > 0
    errors = families["model_error_rate"]
    assert [(s.labels["model_version"], s.value) for s in errors] == [("wd:v1", 0.0)]
    assert "ab_test_confidence" in families
    batches = {s.name: s.value for s in families["nightscan_batch_size"]}
    assert batches["nightscan_batch_size_count"] >= 5
    requests = {
        (s.labels["deployment"], s.labels["model_version"], s.labels["status"]): s.value
        for s in families["nightscan_requests"]
        if s.name == "nightscan_requests_total"
    }
    assert requests == {("prod", "wd:v1", "ok"): 5.0}
    latency = {s.name: s.value for s in families["nightscan_request_latency_seconds"]}
    assert latency["nightscan_request_latency_seconds_count"] == 5
    weight = families["nightscan_traffic_weight"]
    assert [(s.labels["model_version"], s.value) for s in weight] == [("wd:v1", 100.0)]


@needs_promtool
def test_promtool_accepts_the_metrics_output(client):
    client.post("/predict", json={"audio": [0.01] * 22050})
    _, text = _scrape(client)
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True
    )
    # promtool exits 0 for valid exposition; lint hints (e.g. counter naming) go to stdout.
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_are_valid_and_pass_their_unit_tests():
    check = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "4 rules found" in check.stdout
    test = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULES / "alerts_test.yml")],
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_alert_rules_name_the_seed_alerts():
    text = (RULES / "alerts.yml").read_text()
    pairs = re.findall(r"- alert: (\w+)\n\s+expr: ([^#\n]+)", text)
    assert {name: expr.strip() for name, expr in pairs} == {
        "ModelInferenceLatencyHigh": "model_inference_latency_p95 > 1000",
        "ModelErrorRateHigh": "model_error_rate > 5",
        "ABTestSignificantResult": "ab_test_confidence > 0.95",
        "ModelPredictionDrift": "model_prediction_drift == 1",
    }
