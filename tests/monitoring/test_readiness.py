"""After failure_threshold failed health checks a deployment is unhealthy and readiness says so."""

from __future__ import annotations

from core.events import recent_events


def test_readiness_follows_health_checks(served, client):
    _, manager = served  # "prod" serves wd:v1; nothing earlier to roll back to
    assert client.get("/ready").status_code == 200
    assert client.get("/v2/models/wd/ready").status_code == 200
    dep, _model = manager.pool.model_for("prod")
    info = manager.get_deployment("prod")
    for _ in range(info.config.health_check.failure_threshold):
        manager.supervisor._note_probe(dep, info, False, "TimeoutError: no answer within 10s")
    assert manager.get_deployment("prod").health == "unhealthy"
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["detail"] == "no deployment is healthy"
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/wd/ready").status_code == 503
    kinds = {e.kind for e in recent_events()}
    assert {"deployment.unhealthy", "deployment.rollback_failed"} <= kinds

    manager.supervisor._note_probe(dep, info, True, "ok")  # recovers on the next good probe
    assert manager.get_deployment("prod").health == "healthy"
    assert client.get("/ready").status_code == 200
    assert client.get("/v2/models/wd/ready").status_code == 200


def test_events_route_streams_by_id(served, client):
    _, manager = served
    everything = client.get("/events").json()
    assert everything[0]["kind"] == "deployment.deployed"  # newest first
    newest = everything[0]["id"]
    manager.undeploy("prod", reason="test")
    newer = client.get("/events", params={"after_id": newest}).json()
    assert [e["kind"] for e in newer] == ["deployment.undeployed"]
    assert client.get("/events", params={"kind": "alert."}).json() == []
    assert client.get("/events", params={"limit": 0}).status_code == 422
