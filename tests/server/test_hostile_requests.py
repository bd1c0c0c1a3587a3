"""The hostile requests of issue 11, each replayed against a real uvicorn with the limits scaled
down (body 2 MiB, 512 Ki decoded samples): the status, bounded memory growth of the serving
process, and a /health that keeps answering meanwhile."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf
from hostile import send_chunked, watching

from core.auth import get_token_store
from core.deployments import get_deployment_manager
from core.server.limits import AudioLimits

BODY_LIMIT = 2 * 1024**2
LIMITS = AudioLimits(max_seconds=60.0, max_channels=2, max_samples=512 * 1024)
# Scaled-down bound for one request's RSS growth: the 256 MB above a 64 MiB body limit.
MAX_GROWTH_MB = 64


@pytest.fixture
def hostile(ctx, start_server, kit, monkeypatch):
    """A server over SQLite or PostgreSQL with the limits lowered."""
    monkeypatch.setattr("core.server.app.MAX_UPLOAD_BYTES", BODY_LIMIT)
    kit.register("v1.0.0")
    manager = get_deployment_manager()
    kit.deploy(manager, "v1.0.0")
    return start_server(manager, audio_limits=LIMITS)


def assert_healthy(watch) -> None:
    assert watch.health and set(watch.health) == {200}, watch.health[-5:]


def flac(seconds: float, channels: int, sr: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((int(seconds * sr), channels), np.float32), sr, format="FLAC")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("path", "content_type", "head"),
    [
        ("/predict", "application/json", b'{"audio": ['),
        ("/predict", "audio/wav", b"RIFF"),
        ("/predict", "multipart/form-data; boundary=xx", b'--xx\r\nContent-Disposition: '
         b'form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
        ("/v2/models/wildlife_detector/infer", "application/json", b'{"inputs": [{"data": ['),
        ("/feedback", "application/json", b'{"request_id": "'),
    ],
)  # fmt: skip
def test_chunked_bodies_stop_at_the_limit(hostile, path, content_type, head) -> None:
    """Was: 151 and 400 MiB chunked bodies read whole before the refusal."""
    with watching(hostile.url) as watch:
        status, sent = send_chunked(
            hostile.url, path, content_type, b"0," * 32768, 32 * BODY_LIMIT, head
        )
    assert status == 413
    assert sent < 8 * BODY_LIMIT  # the answer came at the limit (socket buffers hold a few MB)
    assert watch.growth_mb < MAX_GROWTH_MB
    assert_healthy(watch)


def test_large_json_samples_are_counted_before_allocation(hostile) -> None:
    """Was: 64 MiB of JSON zeros took RSS to 10.8 GB and /health timed out."""
    body = b'{"audio": [' + b"0," * (BODY_LIMIT // 2 - 64) + b'0], "sample_rate": 384000}'
    assert len(body) <= BODY_LIMIT and body.count(b",") + 1 > LIMITS.max_samples
    with watching(hostile.url) as watch:
        r = hostile.client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
    assert r.status_code == 413 and "limit" in r.json()["detail"], r.text
    assert watch.growth_mb < MAX_GROWTH_MB
    assert_healthy(watch)


def test_large_json_samples_within_the_limits_are_served(hostile, kit) -> None:
    """Past 1 MiB the samples are parsed by numpy, not as Python floats; same answer."""
    samples = kit.call(seconds=4.0)
    text = json.dumps({"audio": samples.tolist(), "sample_rate": kit.SR})
    assert len(text) > 1024**2
    fast = hostile.client.post(
        "/predict", content=text, headers={"content-type": "application/json"}
    )
    assert fast.status_code == 200, fast.text
    wav = kit.wav_bytes(samples, subtype="FLOAT")
    ref = hostile.client.post("/predict", content=wav, headers={"content-type": "audio/wav"})
    got, want = fast.json()["predictions"], ref.json()["predictions"]
    assert got["predicted_class"] == want["predicted_class"]
    for label, p in want["probabilities"].items():
        assert got["probabilities"][label] == pytest.approx(p, abs=1e-4)
    bad = text.replace("[", "[1,,", 1)
    r = hostile.client.post("/predict", content=bad, headers={"content-type": "application/json"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("seconds", "channels", "sr", "why"),
    [(4.0, 8, 8000, "channels"), (120.0, 1, 22050, "s long"), (20.0, 2, 96000, "samples")],
)
def test_audio_limits_come_from_the_header(hostile, seconds, channels, sr, why) -> None:
    """Was: an 8-channel 384 kHz FLAC of silence took +947 MB and blocked the loop 4.2 s."""
    data = flac(seconds, channels, sr)
    assert len(data) < BODY_LIMIT
    with watching(hostile.url) as watch:
        r = hostile.client.post("/predict", files={"file": ("a.flac", data, "audio/flac")})
    assert r.status_code == 413 and why in r.json()["detail"], r.text
    assert watch.growth_mb < MAX_GROWTH_MB
    assert_healthy(watch)


def test_v2_refuses_what_it_cannot_use(hostile, kit) -> None:
    url = "/v2/models/wildlife_detector/infer"
    wave = kit.call().tolist()

    def tensor(**extra):
        t = {"name": "waveform", "datatype": "FP32", "shape": [1, len(wave)], "data": wave}
        return {"inputs": [{**t, **extra}]}

    assert hostile.client.post(url, json=tensor()).status_code == 200
    long_id = hostile.client.post(url, json={**tensor(), "id": "x" * 201})
    assert long_id.status_code == 422 and long_id.json()["error"], long_id.text
    nul_id = hostile.client.post(url, json={**tensor(), "id": "a\u0000b"})
    assert nul_id.status_code == 422
    for size in ("abc", {}, -4, True):
        r = hostile.client.post(url, json=tensor(parameters={"binary_data_size": size}))
        assert r.status_code == 422 and "binary_data_size" in r.json()["detail"], (size, r.text)
    deep = b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = hostile.client.post(url, content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "deeper" in r.json()["detail"]
    huge_shape = hostile.client.post(url, json=tensor(shape=[1, 2**31]))
    assert huge_shape.status_code in (413, 422)
    loud = hostile.client.post(url, json=tensor(data=[1e20] * len(wave)))
    assert loud.status_code == 422, loud.text


def test_no_nan_in_answers(hostile, kit) -> None:
    """Was: samples of 1e20 answered 200 with null confidence and probabilities."""
    r = hostile.client.post("/predict", json={"audio": [1e20] * kit.SR})
    assert r.status_code == 422 and "overflow" in r.json()["detail"], r.text
    loud_wav = kit.wav_bytes(np.full(kit.SR, 1e20, np.float32), subtype="FLOAT")
    r = hostile.client.post("/predict", content=loud_wav, headers={"content-type": "audio/wav"})
    assert r.status_code == 422


def test_identifiers_and_integers_are_checked_at_the_edge(hostile, kit) -> None:
    """Was: a NUL in any id a 500 on PostgreSQL, and huge integers an OverflowError (500)."""
    _, admin = get_token_store().create("admin", "hostile-admin")
    auth = {"authorization": f"Bearer {admin}"}
    client = hostile.client
    cases = [
        client.get("/deployments/%00"),
        client.get("/experiments/%00"),
        client.get("/models", params={"model_id": "\x00"}),
        client.get("/events", params={"kind": "\x00"}),
        client.post("/feedback", json={"request_id": "a\u0000b", "true_label": "owl"}),
        client.post("/predict?request_id=x%00y", json={"audio": kit.call().tolist()}),
        client.post("/predict", params={"request_id": "x" * 201}, json={"audio": [0.0] * 100}),
        client.get("/models", params={"offset": 9223372036854775808}),
        client.get("/events", params={"after_id": "1e20"}),
        client.get("/audit", params={"after_id": "1e20"}, headers=auth),
        client.post("/deployments", json={"model_id": "a\u0000"}, headers=auth),
        client.post(f"/deployments/{kit.DEP}/rollback", json={"reason": "\u0000"}, headers=auth),
    ]
    assert [r.status_code for r in cases] == [422] * len(cases), [r.text for r in cases]
    assert all(isinstance(r.json()["detail"], str) for r in cases)
    # Nothing above reached a writer: predictions and feedback still work end to end.
    ok = client.post("/predict", json={"audio": kit.call().tolist()})
    assert ok.status_code == 200
    fb = client.post("/feedback", json={"request_id": ok.json()["request_id"], "true_label": "owl"})
    assert fb.status_code == 200, fb.text


def test_a_wrong_method_is_405_with_every_allowed_method(hostile) -> None:
    """Was: OPTIONS answered 405 without Allow (or with the first route's methods only)."""
    for method, path, allowed in [
        ("OPTIONS", "/models/m/v1", "DELETE, GET"),
        ("PUT", "/deployments", "GET, POST"),
        ("PATCH", "/health", "GET"),
    ]:
        r = hostile.client.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allowed, (path, r.headers)
        assert isinstance(r.json()["detail"], str)


def test_identifiers_inside_configuration_bodies(hostile, kit) -> None:
    """Ids in a deployment or experiment configuration follow the same rule as in a path."""
    _, admin = get_token_store().create("admin", "config-admin")
    auth = {"authorization": f"Bearer {admin}"}
    long_id = "d" * 201
    bodies = [
        ("/deployments", {"model_id": kit.MODEL, "version": "v1.0.0", "deployment_id": long_id}),
        ("/deployments", {"model_id": kit.MODEL, "version": "v1.0.0", "deployment_id": "a\tb"}),
        ("/experiments", {"experiment_id": long_id, "name": "x"}),
    ]
    for path, body in bodies:
        r = hostile.client.post(path, json=body, headers=auth)
        assert r.status_code == 422, (path, r.status_code, r.text)
