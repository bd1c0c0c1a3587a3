"""The HTTP endpoint on a real uvicorn (127.0.0.1, free port) through real httpx clients:
/predict in every accepted form, experiments and feedback, readiness, the read-only views,
/openapi.json, overload (503 + Retry-After), restore after restart, graceful shutdown, and
every bad input answered with a 4xx and a JSON ``detail`` while the server stays up."""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from core import context, get_ab_test_manager
from core.auth import get_token_store
from core.deployments import DeploymentManager, get_deployment_manager

V1, V2 = "wildlife_detector:v1.0.0", "wildlife_detector:v2.0.0"


def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def check_prediction(body: dict[str, Any], kit, model_version: str = V1) -> None:
    assert body["model_version"] == model_version and body["deployment_id"] == kit.DEP
    assert body["request_id"] and body["inference_time"] > 0
    p = body["predictions"]
    assert set(p["probabilities"]) == set(kit.LABELS)
    assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert p["predicted_class"] == max(p["probabilities"], key=p["probabilities"].get)
    assert p["confidence"] == p["probabilities"][p["predicted_class"]]


def test_binds_to_loopback_by_default() -> None:
    from core.server.runner import make_server
    from nightscan_tui.cli import app

    assert make_server(app=object()).config.host == "127.0.0.1"
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "127.0.0.1" in result.output


def test_predict_accepts_multipart_raw_wav_and_json_samples(served, kit) -> None:
    client = served.client
    assert served.url.startswith("http://127.0.0.1:")
    wav = kit.wav_bytes(kit.call(seconds=1.0))
    decoded, _ = sf.read(__import__("io").BytesIO(wav), dtype="float32")

    multipart = client.post("/predict", files={"file": ("call.wav", wav, "audio/wav")})
    assert multipart.status_code == 200, multipart.text
    check_prediction(multipart.json(), kit)
    assert multipart.json()["experiment_info"] is None

    raw = client.post("/predict", content=wav, headers={"content-type": "audio/wav"})
    assert raw.status_code == 200, raw.text
    octet = client.post(
        "/predict", content=wav, headers={"content-type": "application/octet-stream"}
    )
    assert octet.status_code == 200, octet.text
    samples = client.post("/predict", json={"audio": decoded.tolist(), "sample_rate": kit.SR})
    assert samples.status_code == 200, samples.text
    reference = multipart.json()["predictions"]["probabilities"]
    for response in (raw, octet, samples):
        check_prediction(response.json(), kit)
        assert response.json()["predictions"]["probabilities"] == pytest.approx(reference)

    stereo = np.stack([decoded, decoded], axis=1)  # [[l, r], ...]: the same audio twice
    both = client.post("/predict", json={"audio": stereo.tolist(), "sample_rate": kit.SR})
    assert both.status_code == 200, both.text
    assert both.json()["predictions"]["probabilities"] == pytest.approx(reference, abs=1e-5)

    resampled = kit.call(seconds=2.5, sr=16_000)  # several windows, another sample rate
    other = client.post("/predict", json={"audio": resampled.tolist(), "sample_rate": 16_000})
    assert other.status_code == 200, other.text
    check_prediction(other.json(), kit)

    named = client.post(
        "/predict", params={"request_id": "mine-1"}, files={"file": ("c.wav", wav, "audio/wav")}
    )
    assert named.json()["request_id"] == "mine-1"
    header = client.post(
        "/predict", content=wav, headers={"content-type": "audio/wav", "x-request-id": "mine-2"}
    )
    assert header.json()["request_id"] == "mine-2"

    metrics = client.get(f"/deployments/{kit.DEP}/metrics").json()["metrics"]
    assert metrics["requests_in_window"] == 8 and metrics["errors_in_window"] == 0


def test_ready_is_503_until_a_deployment_serves(sqlite_ctx, start_server, kit) -> None:
    kit.register("v1.0.0")
    running = start_server()
    client = running.client
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["detail"] == "no deployment is loaded"
    assert client.get("/v2/health/ready").status_code == 503
    predict = client.post("/predict", json={"audio": kit.call().tolist()})
    assert predict.status_code == 404 and "no healthy deployment" in predict.json()["detail"]

    kit.deploy(running.manager, "v1.0.0")
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    [served] = ready.json()["deployments"]
    assert served["generation"] >= 1 and served["traffic"] == {V1: 100.0}
    assert {k: served[k] for k in ("deployment_id", "model_version", "healthy")} == {
        "deployment_id": kit.DEP,
        "model_version": V1,
        "healthy": True,
    }
    assert client.get("/v2/health/ready").status_code == 200
    assert client.post("/predict", json={"audio": kit.call().tolist()}).status_code == 200


def test_read_only_views(served, kit) -> None:
    client = served.client
    for i in range(3):
        client.post("/predict", json={"audio": kit.call(seed=i).tolist()}).raise_for_status()

    models = client.get("/models").json()
    assert [(m["version"], m["status"]) for m in models] == [
        ("v1.0.0", "deployed"),
        ("v2.0.0", "validation"),
    ]
    assert client.get("/models", params={"status": "deployed"}).json()[0]["version"] == "v1.0.0"
    one = client.get(f"/models/{kit.MODEL}/v1.0.0").json()
    assert one["model_id"] == kit.MODEL and len(one["checksum"]) == 64
    assert one["training_config"]["labels"] == kit.LABELS

    deployments = client.get("/deployments").json()
    assert [d["deployment_id"] for d in deployments] == [kit.DEP]
    assert deployments[0]["model_version"] == V1
    assert deployments[0]["metrics"]["requests_in_window"] == 3

    status = client.get(f"/deployments/{kit.DEP}").json()
    assert status["served_here"] is True and status["health"] == "healthy"
    assert status["revisions"][0]["status"] == "active"
    assert status["config"]["max_audio_seconds"] == kit.MAX_AUDIO_SECONDS

    metrics = client.get(f"/deployments/{kit.DEP}/metrics").json()["metrics"]
    assert metrics["requests_in_window"] == 3 and metrics["model_version"] == V1
    assert metrics["p95_latency_ms"] > 0 and metrics["error_rate"] == 0
    samples = client.get(f"/deployments/{kit.DEP}/history").json()["samples"]
    assert sum(s["requests"] for s in samples) == 3
    assert {"t", "requests", "errors", "average_latency_ms", "p95_latency_ms"} <= set(samples[0])

    served.manager.undeploy(kit.DEP)
    assert client.get("/deployments").json() == []
    stopped = client.get("/deployments", params={"include_stopped": "true"}).json()
    assert stopped[0]["status"] == "stopped"


def test_openapi_describes_every_route(served) -> None:
    spec = served.client.get("/openapi.json").json()
    paths = spec["paths"]
    app = served.client.get("/openapi.json")  # the same server, again: stable
    assert app.json()["paths"] == paths
    expected = {
        "/predict", "/feedback", "/health", "/ready", "/models", "/models/{model_id}/{version}",
        "/deployments", "/deployments/{deployment_id}", "/deployments/{deployment_id}/metrics",
        "/deployments/{deployment_id}/history", "/experiments", "/experiments/{experiment_id}",
        "/experiments/{experiment_id}/analysis", "/v2", "/v2/health/live", "/v2/health/ready",
        "/v2/models/{name}", "/v2/models/{name}/versions/{version}", "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready", "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    }  # fmt: skip
    assert expected <= set(paths)
    from core.server.app import create_app

    for route in create_app(served.manager, background=False).routes:
        if isinstance(route, APIRoute):
            assert route.path in paths, route.path
            for method in route.methods - {"HEAD"}:
                assert method.lower() in paths[route.path], (route.path, method)
    body = paths["/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json", "audio/wav"} <= set(body)
    assert {"413", "415", "503"} <= set(paths["/predict"]["post"]["responses"])


def test_feedback_is_joined_to_the_request(served, kit) -> None:
    client = served.client
    body = client.post("/predict", json={"audio": kit.call().tolist()}).json()
    predicted = body["predictions"]["predicted_class"]
    wrong = next(label for label in kit.LABELS if label != predicted)

    first = client.post("/feedback", json={"request_id": body["request_id"], "true_label": wrong})
    assert first.status_code == 200, first.text
    assert first.json() == {
        "request_id": body["request_id"],
        "model_version": V1,
        "variant": None,
        "experiment_id": None,
        "predicted_class": predicted,
        "true_label": wrong,
        "correct": False,
        "duplicate": False,
    }
    again = client.post("/feedback", json={"request_id": body["request_id"], "true_label": wrong})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    metrics = client.get(f"/deployments/{kit.DEP}/metrics").json()["metrics"]
    assert metrics["feedback_in_window"] == 1 and metrics["accuracy"] == 0.0

    unknown = client.post("/feedback", json={"request_id": "nope", "true_label": "owl"})
    assert unknown.status_code == 404 and "unknown" in unknown.json()["detail"]
    label = client.post("/feedback", json={"request_id": body["request_id"], "true_label": "cat"})
    assert label.status_code == 422 and "unknown label 'cat'" in label.json()["detail"]


def test_feedback_reaches_any_server_process_and_counts_once(served, kit, sqlite_ctx) -> None:
    """A prediction served here is joined by a second ``nightscan serve`` (another process
    that never saw it, as after a restart), and the first feedback wins everywhere."""
    body = served.client.post("/predict", json={"audio": kit.call().tolist()}).json()
    predicted = body["predictions"]["predicted_class"]
    served.manager.predictor.predictions.flush()  # what the background flush does every 0.5 s
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = [sys.executable, "-c", "from nightscan_tui.cli import main; main()"]
    home = str(sqlite_ctx.settings.home)
    proc = subprocess.Popen([*cli, "serve", "--home", home, "--port", str(port)])
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as other:
            for _ in range(300):
                try:
                    if other.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            feedback = {"request_id": body["request_id"], "true_label": predicted}
            first = other.post("/feedback", json=feedback)
            assert first.status_code == 200, first.text
            assert first.json()["correct"] is True and first.json()["duplicate"] is False
            assert first.json()["model_version"] == V1
            wrong = next(label for label in kit.LABELS if label != predicted)
            again = served.client.post(
                "/feedback", json={"request_id": body["request_id"], "true_label": wrong}
            )
            assert again.status_code == 200
            assert again.json()["duplicate"] is True and again.json()["correct"] is True
    finally:
        proc.terminate()
        proc.wait(30)


def test_old_predictions_are_pruned(served, kit) -> None:
    from datetime import timedelta

    from data.types import utcnow

    log = served.manager.predictor.predictions
    served.client.post("/predict", json={"audio": kit.call().tolist()})
    log.flush()  # unless the background flush was first
    assert log.prune() == 0  # within the retention
    assert log.prune(now=utcnow() + timedelta(days=31)) == 1


def test_experiment_routed_predictions_and_feedback(served, kit) -> None:
    ab = get_ab_test_manager()
    variants = {"control": V1, "treatment": V2}
    ab.create_experiment(
        {
            "experiment_id": "exp_http",
            "name": "v1 vs v2",
            "model_variants": variants,
            "traffic_allocation": {"control": 50.0, "treatment": 50.0},
            "success_metrics": ["accuracy", "confidence", "inference_time"],
            "minimum_sample_size": 100,
        }
    )
    client = served.client
    draft = client.post("/predict", params={"experiment_id": "exp_http"},
                        json={"audio": kit.call().tolist()})  # fmt: skip
    assert draft.status_code == 409 and draft.json()["detail"]  # not running yet
    ab.start_experiment("exp_http")

    seen: dict[str, list[dict[str, Any]]] = {"control": [], "treatment": []}
    for i in range(16):
        response = client.post(
            "/predict",
            params={"experiment_id": "exp_http", "request_id": f"exp-{i}"},
            files={"file": ("c.wav", kit.wav_bytes(kit.call(seed=i)), "audio/wav")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        info = body["experiment_info"]
        assert info["experiment_id"] == "exp_http" and info["variant"] in variants
        assert body["model_version"] == variants[info["variant"]]
        assert ab.assign("exp_http", f"exp-{i}")[0] == info["variant"]  # sticky
        seen[info["variant"]].append(body)
    assert seen["control"] and seen["treatment"]

    status = ab.get_experiment_status("exp_http")
    for variant, bodies in seen.items():
        assert status["results"][variant]["confidence"] == len(bodies)
        assert status["results"][variant]["inference_time"] == len(bodies)
        assert status["results"][variant]["accuracy"] == 0
    analysis_path = "/experiments/exp_http/analysis"
    assert client.get(analysis_path).status_code == 401  # the analysis needs a viewer token
    _, token = get_token_store().create("viewer", "analyst")
    analysis = client.get(analysis_path, headers={"Authorization": f"Bearer {token}"}).json()
    confidence = analysis["comparisons"]["treatment_vs_control"]["metric_comparisons"]["confidence"]
    assert confidence["control_n"] == len(seen["control"])
    assert confidence["treatment_n"] == len(seen["treatment"])
    assert client.get("/experiments").json()[0]["experiment_id"] == "exp_http"
    assert client.get("/experiments/exp_http").json()["units"]["control"] == len(seen["control"])

    # Feedback lands in the experiment as accuracy, once, for the variant that answered.
    target = seen["treatment"][0]
    truth = target["predictions"]["predicted_class"]
    for _ in range(2):
        fb = client.post("/feedback", json={"request_id": target["request_id"], "true_label": truth,
                                            "experiment_id": "exp_http"})  # fmt: skip
        assert fb.status_code == 200 and fb.json()["variant"] == "treatment"
        assert fb.json()["correct"] is True
    status = ab.get_experiment_status("exp_http")
    assert status["results"]["treatment"]["accuracy"] == 1
    assert status["results"]["control"]["accuracy"] == 0
    wrong_experiment = {"request_id": target["request_id"], "true_label": truth,
                        "experiment_id": "other"}  # fmt: skip
    mismatch = client.post("/feedback", json=wrong_experiment)
    assert mismatch.status_code == 422 and "belongs to experiment" in mismatch.json()["detail"]

    unknown = client.post("/predict", params={"experiment_id": "no_such_experiment"},
                          json={"audio": kit.call().tolist()})  # fmt: skip
    assert unknown.status_code == 404 and "no_such_experiment" in unknown.json()["detail"]
    assert client.get("/experiments/no_such_experiment").status_code == 404


def test_every_bad_input_is_a_4xx_with_detail_and_the_server_stays_up(
    served, kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = served.client
    good = client.post("/predict", json={"audio": kit.call().tolist()})
    assert good.status_code == 200
    request_id = good.json()["request_id"]
    wav = kit.wav_bytes(kit.call(seconds=1.0))
    too_long = kit.wav_bytes(kit.call(seconds=kit.MAX_AUDIO_SECONDS + 1, sr=8000), sr=8000)
    nan_wav = kit.wav_bytes(np.array([0.1, np.nan, 0.2] * 100, np.float32), subtype="FLOAT")
    zero_frames = kit.wav_bytes(np.zeros(0, np.float32))
    audio_ct = {"content-type": "audio/wav"}
    json_ct = {"content-type": "application/json"}

    def predict(**kwargs: Any) -> httpx.Response:
        return client.post("/predict", **kwargs)

    cases: list[tuple[str, int, Callable[[], httpx.Response]]] = [
        ("empty raw body", 422, lambda: predict(content=b"", headers=audio_ct)),
        ("empty multipart file", 422,
         lambda: predict(files={"file": ("x.wav", b"", "audio/wav")})),
        ("multipart without a file field", 422,
         lambda: predict(files={"other": ("x.wav", wav, "audio/wav")})),
        ("a text file", 422,
         lambda: predict(files={"file": ("notes.txt", b"not audio at all " * 20, "text/plain")})),
        ("PNG bytes as audio/wav", 422,
         lambda: predict(content=b"\x89PNG\r\n\x1a\n" + b"\0" * 200, headers=audio_ct)),
        ("a truncated WAV", 422, lambda: predict(content=wav[: len(wav) // 2], headers=audio_ct)),
        ("a WAV header only", 422, lambda: predict(content=wav[:44], headers=audio_ct)),
        ("zero-length WAV", 422, lambda: predict(content=zero_frames, headers=audio_ct)),
        ("NaN samples in a float WAV", 422, lambda: predict(content=nan_wav, headers=audio_ct)),
        ("a WAV longer than the maximum", 413,
         lambda: predict(content=too_long, headers=audio_ct)),
        ("text/plain content type", 415,
         lambda: predict(content=b"abc", headers={"content-type": "text/plain"})),
        ("no content type", 415, lambda: predict(content=b"abc", headers={"content-type": ""})),
        ("form-urlencoded", 415, lambda: predict(data={"audio": "1,2,3"})),
        ("malformed JSON", 422, lambda: predict(content=b'{"audio": [0.1, ', headers=json_ct)),
        ("JSON that is not an object", 422, lambda: predict(content=b"[1, 2]", headers=json_ct)),
        ("JSON without audio", 422, lambda: predict(json={"sample_rate": 22050})),
        ("JSON strings as samples", 422, lambda: predict(json={"audio": ["a", "b"]})),
        ("NaN samples", 422,
         lambda: predict(content=b'{"audio": [0.1, NaN, 0.2]}', headers=json_ct)),
        ("Infinity samples", 422,
         lambda: predict(content=b'{"audio": [0.1, Infinity]}', headers=json_ct)),
        ("overflowing samples", 422,
         lambda: predict(content=b'{"audio": [0.1, 1e999]}', headers=json_ct)),
        ("zero-length audio", 422, lambda: predict(json={"audio": []})),
        ("ragged stereo frames", 422, lambda: predict(json={"audio": [[0.1, 0.2], [0.3]]})),
        ("audio longer than the maximum", 413,
         lambda: predict(json={"audio": [0.0] * (8000 * 6), "sample_rate": 8000})),
        ("sample rate 0", 422, lambda: predict(json={"audio": [0.1] * 100, "sample_rate": 0})),
        ("negative sample rate", 422,
         lambda: predict(json={"audio": [0.1] * 100, "sample_rate": -8000})),
        ("sample rate too high", 422,
         lambda: predict(json={"audio": [0.1] * 100, "sample_rate": 10_000_000})),
        ("fractional sample rate", 422,
         lambda: predict(json={"audio": [0.1] * 100, "sample_rate": 22050.5})),
        ("unknown experiment", 404,
         lambda: predict(params={"experiment_id": "nope"}, json={"audio": [0.1] * 100})),
        ("unknown deployment", 404,
         lambda: predict(params={"deployment_id": "nope"}, json={"audio": [0.1] * 100})),
        ("experiment id too long", 422,
         lambda: predict(params={"experiment_id": "x" * 201}, json={"audio": [0.1] * 100})),
        ("GET /predict", 405, lambda: client.get("/predict")),
        ("unknown route", 404, lambda: client.get("/no/such/route")),
        ("feedback: malformed JSON", 422,
         lambda: client.post("/feedback", content=b"{", headers=json_ct)),
        ("feedback: missing label", 422,
         lambda: client.post("/feedback", json={"request_id": request_id})),
        ("feedback: empty request id", 422,
         lambda: client.post("/feedback", json={"request_id": "", "true_label": "owl"})),
        ("feedback: unknown request", 404,
         lambda: client.post("/feedback", json={"request_id": "nope", "true_label": "owl"})),
        ("feedback: bad label", 422,
         lambda: client.post("/feedback", json={"request_id": request_id, "true_label": "cat"})),
        ("unknown model version", 404, lambda: client.get(f"/models/{kit.MODEL}/v9.9.9")),
        ("unknown deployment view", 404, lambda: client.get("/deployments/nope")),
        ("unknown deployment metrics", 404, lambda: client.get("/deployments/nope/metrics")),
        ("unknown deployment history", 404, lambda: client.get("/deployments/nope/history")),
        ("history window out of range", 422,
         lambda: client.get(f"/deployments/{kit.DEP}/history", params={"seconds": 0})),
        ("bad list limit", 422, lambda: client.get("/models", params={"limit": "many"})),
        ("unknown status filter", 422, lambda: client.get("/models", params={"status": "x"})),
    ]  # fmt: skip
    problems = []
    for name, expected, send in cases:
        response = send()
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = None
        if response.status_code != expected or not isinstance(detail, str) or not detail:
            problems.append(f"{name}: {response.status_code} {response.text[:200]}")
    assert problems == []

    # A body above the upload limit is refused before it is read (limit lowered for the test).
    monkeypatch.setattr("core.server.app.MAX_UPLOAD_BYTES", 1024)
    big = predict(content=b"\0" * 4096, headers=audio_ct)
    assert big.status_code == 413 and "larger than" in big.json()["detail"]
    monkeypatch.undo()

    # Still up, still serving, and nothing a client sent counted as a model error.
    assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
    after = predict(files={"file": ("call.wav", wav, "audio/wav")})
    assert after.status_code == 200
    check_prediction(after.json(), kit)
    metrics = client.get(f"/deployments/{kit.DEP}/metrics").json()["metrics"]
    assert metrics["errors_in_window"] == 0


def test_full_queue_answers_503_with_retry_after(sqlite_ctx, start_server, kit, models_module):
    kit.register("v1.0.0", architecture=f"{models_module.__name__}:flaky")
    manager = get_deployment_manager()
    kit.deploy(
        manager,
        "v1.0.0",
        batching={"max_batch_size": 1, "max_batch_delay_ms": 0, "queue_capacity": 1},
        scaling={"min_replicas": 1, "max_replicas": 1},
    )
    running = start_server(manager)
    models_module.STATE["delay"] = 0.3
    audio = kit.call().tolist()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/predict", json={"audio": audio}) for _ in range(8))
            )

    responses = asyncio.run(burst())
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503}, codes
    for r in responses:
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1
            assert "at capacity" in r.json()["detail"]
    models_module.STATE["delay"] = 0.0
    assert running.client.post("/predict", json={"audio": audio}).status_code == 200


def test_deployments_are_restored_when_the_server_restarts(ctx, start_server, kit) -> None:
    kit.register("v1.0.0")
    kit.deploy(get_deployment_manager(), "v1.0.0")
    fresh = context.configure(ctx.settings.home, ctx.settings.database_url)  # a new process
    try:
        running = start_server()  # the app's own manager; startup reconciles
        ready = running.client.get("/ready")
        assert ready.status_code == 200, ready.text
        body = running.client.post("/predict", json={"audio": kit.call().tolist()})
        assert body.status_code == 200 and body.json()["model_version"] == V1
    finally:
        fresh.close()


def test_the_serving_loop_follows_deploys_made_elsewhere(ctx, start_server, kit) -> None:
    kit.register("v1.0.0", seed=1)
    kit.register("v2.0.0", seed=2)
    running = start_server(background=True, interval_s=0.05)
    client = running.client
    assert client.get("/ready").status_code == 503
    other = DeploymentManager(ctx)  # as if `nightscan deploy` ran in another terminal
    try:
        kit.deploy(other, "v1.0.0")
        wait_for(lambda: client.get("/ready").status_code == 200)

        def version() -> str:
            response = client.post("/predict", json={"audio": kit.call().tolist()})
            return response.json()["model_version"]

        assert version() == V1
        kit.deploy(other, "v2.0.0")
        wait_for(lambda: version() == V2)
        other.undeploy(kit.DEP)
        wait_for(lambda: client.get("/ready").status_code == 503)
    finally:
        other.close()


def test_graceful_shutdown_finishes_requests_in_flight(
    sqlite_ctx, start_server, kit, models_module
) -> None:
    from core.server.app import create_app
    from core.server.runner import BackgroundServer

    kit.register("v1.0.0", architecture=f"{models_module.__name__}:flaky")
    manager = get_deployment_manager()
    kit.deploy(manager, "v1.0.0")
    server = BackgroundServer(port=0, app=create_app(manager, background=False)).start()
    models_module.STATE["delay"] = 0.5
    outcome: list[Any] = []

    def client() -> None:
        try:
            outcome.append(httpx.post(server.url + "/predict", timeout=60,
                                      json={"audio": kit.call().tolist()}))  # fmt: skip
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    runtime = manager.pool.model_for(kit.DEP)[1].runtime
    wait_for(lambda: runtime.in_flight > 0 or runtime.queue_depth > 0)
    server.stop()
    thread.join(60)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.Response), outcome
    assert outcome[0].status_code == 200 and outcome[0].json()["model_version"] == V1
    assert not server.thread.is_alive()
    assert math.isclose(sum(outcome[0].json()["predictions"]["probabilities"].values()), 1.0,
                        abs_tol=1e-5)  # fmt: skip


def test_a_canary_with_quality_metrics_over_http(served, kit) -> None:
    """The deploy body's canary section names quality metrics; an unknown metric or class is a
    422 with its detail and nothing starts; a known class starts a canary that carries them."""
    _, admin = get_token_store().create("admin", "canary-admin")
    auth = {"Authorization": f"Bearer {admin}"}
    base = {"model_id": kit.MODEL, "version": "v2.0.0", "deployment_id": kit.DEP,
            "canary_deployment": True, "traffic_percentage": 5}  # fmt: skip
    for metrics, detail in (
        (["recal.owl"], "unknown quality metric 'recal.owl'"),
        (["recall.zebra"], "unknown class in recall.zebra"),
    ):
        body = {**base, "canary": {"quality_metrics": metrics}}
        r = served.client.post("/deployments", json=body, headers=auth)
        assert r.status_code == 422 and detail in r.json()["detail"], r.text
    assert served.client.get(f"/deployments/{kit.DEP}/canary").status_code == 404
    label = kit.LABELS[0]
    body = {**base, "canary": {"quality_metrics": [f"recall.{label}", "macro_f1"]}}
    r = served.client.post("/deployments", json=body, headers=auth)
    assert r.status_code == 201, r.text
    status = served.client.get(f"/deployments/{kit.DEP}/canary").json()
    assert status["state"] == "progressing"
