"""Bearer tokens: hashes only, roles, and every guarded route's 401 and 403."""

from __future__ import annotations

import hashlib

import pytest
from sqlmodel import select

from core.auth import AuthenticationError, PermissionDeniedError, get_token_store
from data.auth_tables import ApiTokenRow

# (method, path, json body, the least role that passes)
GUARDED = [
    ("POST", "/models/wd/v2/status", {"status": "testing"}, "admin"),
    ("POST", "/deployments", {"model_id": "wd", "version": "v2", "deployment_id": "b"}, "admin"),
    ("DELETE", "/deployments/prod", None, "admin"),
    ("POST", "/deployments/prod/rollback", {"reason": "test"}, "operator"),
    ("POST", "/experiments", {"experiment_id": "e1"}, "operator"),
    ("POST", "/experiments/e1/start", None, "operator"),
    ("POST", "/experiments/e1/stop", {"reason": "test"}, "operator"),
    ("GET", "/experiments/e1/analysis", None, "viewer"),
    ("POST", "/deployments/prod/canary/pause", None, "operator"),
    ("POST", "/deployments/prod/canary/abort", {"reason": "test"}, "operator"),
]
ROLES = ["viewer", "operator", "admin"]


def test_tokens_are_stored_as_hashes_and_can_be_revoked(sqlite_ctx):
    store = get_token_store()
    info, token = store.create("operator", "ci")
    with sqlite_ctx.db.session() as session:
        rows = session.exec(select(ApiTokenRow)).all()
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(rows[0].model_dump())
    assert store.authenticate(token).role == "operator"
    assert store.authorize(token, "viewer").name == "ci"
    with pytest.raises(PermissionDeniedError, match="needs admin"):
        store.authorize(token, "admin")
    store.revoke(info.id)
    with pytest.raises(AuthenticationError):
        store.authenticate(token)
    with pytest.raises(AuthenticationError):
        store.authenticate("nso_not-a-token")
    actions = [e.action for e in sqlite_ctx.audit.entries(entity_type="token")]
    assert actions == ["token.revoke", "token.create"]


@pytest.mark.parametrize("method,path,body,needed", GUARDED)
def test_guarded_routes_answer_401_without_a_token(client, method, path, body, needed):
    r = client.request(method, path, json=body)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "token" in r.json()["detail"]
    r = client.request(method, path, json=body, headers={"Authorization": "Bearer nso_wrong"})
    assert r.status_code == 401


@pytest.mark.parametrize("method,path,body,needed", GUARDED)
def test_guarded_routes_answer_403_below_the_needed_role(client, method, path, body, needed):
    store = get_token_store()
    for role in ROLES:
        _, token = store.create(role, f"{role}-user")
        r = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        if ROLES.index(role) < ROLES.index(needed):
            assert r.status_code == 403, (role, r.text)
            assert f"needs {needed}" in r.json()["detail"]
        else:
            assert r.status_code not in (401, 403), (role, r.text)


def test_actions_are_audited_with_the_token_name(client, served):
    _, token = get_token_store().create("admin", "release-bot")
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/deployments", json={"model_id": "wd", "version": "v2",
                                          "deployment_id": "prod"}, headers=auth)  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["model_version"] == "wd:v2"
    r = client.post("/deployments/prod/rollback", json={"reason": "bad canary"}, headers=auth)
    assert r.status_code == 200 and r.json()["version"] == "v1"
    from core import get_context

    entries = get_context().audit.entries(entity_id="prod")
    assert [e.action for e in entries][:2] == ["deployment.rollback", "deployment.deploy"]
    assert {e.actor for e in entries[:2]} == {"token:release-bot"}


def test_predict_is_open_by_default_and_can_require_a_token(served):
    import httpx

    from core.server.app import create_app
    from core.server.runner import BackgroundServer

    _, manager = served
    server = BackgroundServer(
        port=0, app=create_app(manager, background=False, require_predict_token=True)
    ).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            body = {"audio": [0.0] * 22050, "sample_rate": 22050}
            assert c.post("/predict", json=body).status_code == 401
            _, token = get_token_store().create("viewer", "client")
            r = c.post("/predict", json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200
    finally:
        server.stop()
    with httpx.Client(base_url=served[0], timeout=30) as c:
        r = c.post("/predict", json={"audio": [0.0] * 22050, "sample_rate": 22050})
        assert r.status_code == 200
