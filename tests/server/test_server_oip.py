"""Open Inference Protocol v2 on a real server: the REST routes with plain httpx, then the real
``tritonclient.http.InferenceServerClient`` (JSON and binary tensor data) unchanged."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

V1 = "wildlife_detector:v1.0.0"


def infer_body(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "id": "oip-1",
        "inputs": [
            {"name": "waveform", "shape": [1, x.size], "datatype": "FP32", "data": x.tolist()}
        ],
        **extra,
    }


def outputs(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in body["outputs"]}


def test_health_and_metadata_routes(served, kit) -> None:
    client = served.client
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}

    meta = client.get(f"/v2/models/{kit.MODEL}").json()
    assert meta["name"] == kit.MODEL and meta["versions"] == ["v1.0.0", "v2.0.0"]
    assert meta["inputs"] == [{"name": "waveform", "datatype": "FP32", "shape": [1, -1]}]
    assert meta["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [1, len(kit.LABELS)]},
        {"name": "predicted_class", "datatype": "BYTES", "shape": [1]},
    ]
    version = client.get(f"/v2/models/{kit.MODEL}/versions/v2.0.0").json()
    assert version["versions"] == ["v2.0.0"]
    assert client.get(f"/v2/models/{kit.MODEL}/ready").status_code == 200
    assert client.get(f"/v2/models/{kit.MODEL}/versions/v1.0.0/ready").status_code == 200
    assert client.get(f"/v2/models/{kit.MODEL}/versions/v2.0.0/ready").status_code == 503
    assert client.get("/v2/models/nope/ready").status_code == 503
    for path in ("/v2/models/nope", f"/v2/models/{kit.MODEL}/versions/v9"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.json()["detail"]


def test_json_infer_matches_predict(served, kit) -> None:
    client = served.client
    x = kit.call(seconds=1.0)
    reference = client.post("/predict", json={"audio": x.tolist()}).json()["predictions"]

    for path in (f"/v2/models/{kit.MODEL}/infer",
                 f"/v2/models/{kit.MODEL}/versions/v1.0.0/infer"):  # fmt: skip
        response = client.post(path, json=infer_body(x))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_name"] == kit.MODEL and body["model_version"] == "v1.0.0"
        assert body["id"] == "oip-1"
        out = outputs(body)
        assert out["probabilities"]["shape"] == [1, len(kit.LABELS)]
        assert out["probabilities"]["datatype"] == "FP32"
        probs = out["probabilities"]["data"]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert probs == pytest.approx([reference["probabilities"][k] for k in kit.LABELS])
        assert out["predicted_class"] == {
            "name": "predicted_class", "datatype": "BYTES", "shape": [1],
            "data": [reference["predicted_class"]],
        }  # fmt: skip

    at_8k = kit.call(seconds=1.0, sr=8000)
    resampled = client.post(f"/v2/models/{kit.MODEL}/infer",
                            json=infer_body(at_8k, parameters={"sample_rate": 8000}))  # fmt: skip
    assert resampled.status_code == 200, resampled.text


def test_bad_infer_requests_are_4xx(served, kit) -> None:
    client = served.client
    x = kit.call(seconds=0.5)
    path = f"/v2/models/{kit.MODEL}/infer"
    good = infer_body(x)
    tensor = good["inputs"][0]
    binary_tensor = {**tensor, "data": None, "parameters": {"binary_data_size": x.size * 4}}
    header = json.dumps({"inputs": [binary_tensor]}).encode()
    cases: list[tuple[str, int, dict[str, Any]]] = [
        ("not JSON", 422, {"content": b"{nope"}),
        ("no inputs", 422, {"json": {"inputs": []}}),
        ("INT32 data", 422, {"json": {"inputs": [{**tensor, "datatype": "INT32"}]}}),
        ("shape does not fit the data", 422,
         {"json": {"inputs": [{**tensor, "shape": [1, x.size + 5]}]}}),
        ("two waveforms", 422,
         {"json": {"inputs": [{**tensor, "shape": [2, x.size // 2]}]}}),
        ("no data", 422, {"json": {"inputs": [{**tensor, "data": None}]}}),
        ("strings as data", 422, {"json": {"inputs": [{**tensor, "data": ["a"] * x.size}]}}),
        ("NaN data", 422, {"content": json.dumps(infer_body(
            np.array([0.1, np.nan, 0.2], np.float32))).encode()}),
        ("sample rate is a string", 422,
         {"json": infer_body(x, parameters={"sample_rate": "fast"})}),
        ("sample rate out of range", 422,
         {"json": infer_body(x, parameters={"sample_rate": 10_000_000})}),
        ("too long for the deployment", 413,
         {"json": infer_body(np.zeros(8000 * 6, np.float32), parameters={"sample_rate": 8000})}),
        ("header length beyond the body", 422,
         {"content": header, "headers": {"Inference-Header-Content-Length": "999999"}}),
        ("binary data missing", 422,
         {"content": header, "headers": {"Inference-Header-Content-Length": str(len(header))}}),
    ]  # fmt: skip
    problems = []
    for name, expected, kwargs in cases:
        response = client.post(path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = {}
        # The protocol's error shape (tritonclient reads "error"), plus the endpoint's "detail".
        if response.status_code != expected or not body.get("error") or not body.get("detail"):
            problems.append(f"{name}: {response.status_code} {response.text[:200]}")
    unknown = client.post("/v2/models/nope/infer", json=good)
    if unknown.status_code != 404:
        problems.append(f"unknown model: {unknown.status_code}")
    not_deployed = client.post(f"/v2/models/{kit.MODEL}/versions/v2.0.0/infer", json=good)
    if not_deployed.status_code != 404:
        problems.append(f"version not deployed: {not_deployed.status_code}")
    assert problems == []
    assert client.post(path, json=good).status_code == 200


def test_tritonclient_works_unchanged(served, kit) -> None:
    client = triton.InferenceServerClient(url=f"127.0.0.1:{served.port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(kit.MODEL)
        assert client.is_model_ready(kit.MODEL, model_version="v1.0.0")
        assert not client.is_model_ready(kit.MODEL, model_version="v2.0.0")
        meta = client.get_model_metadata(kit.MODEL)
        assert meta["name"] == kit.MODEL and meta["inputs"][0]["name"] == "waveform"
        assert client.get_server_metadata()["name"] == "nightscan-ops"

        x = kit.call(seconds=1.0)[None, :].astype(np.float32)
        reference = served.client.post("/predict", json={"audio": x[0].tolist()}).json()
        expected = [reference["predictions"]["probabilities"][k] for k in kit.LABELS]
        for binary in (True, False):
            waveform = triton.InferInput("waveform", list(x.shape), "FP32")
            waveform.set_data_from_numpy(x, binary_data=binary)
            requested = [
                triton.InferRequestedOutput("probabilities", binary_data=binary),
                triton.InferRequestedOutput("predicted_class", binary_data=binary),
            ]
            for kwargs in ({}, {"outputs": requested}, {"model_version": "v1.0.0"}):
                result = client.infer(kit.MODEL, [waveform], request_id=f"t-{binary}", **kwargs)
                probs = result.as_numpy("probabilities")
                assert probs.shape == (1, len(kit.LABELS)) and probs.dtype == np.float32
                assert float(probs.sum()) == pytest.approx(1.0, abs=1e-5)
                assert probs[0].tolist() == pytest.approx(expected, abs=1e-6)
                label = result.as_numpy("predicted_class")
                assert label.shape == (1,)
                value = label[0].decode() if isinstance(label[0], bytes) else label[0]
                assert value == reference["predictions"]["predicted_class"]
                response = result.get_response()
                assert response["model_name"] == kit.MODEL and response["id"] == f"t-{binary}"

        with pytest.raises(InferenceServerException) as caught:
            client.infer("nope", [waveform])
        assert caught.value.message() == "model 'nope' is not deployed"  # read from "error"
        assert caught.value.status() == "404"
        with pytest.raises(InferenceServerException) as caught:
            client.get_model_metadata("nope")
        assert caught.value.message() == "model 'nope' is not registered"
    finally:
        client.close()
    # The server is still fine for plain HTTP clients afterwards.
    assert httpx.get(served.url + "/v2/health/live").json() == {"live": True}
