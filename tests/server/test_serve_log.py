"""`nightscan serve` talks: an access log line per request (unless --no-access-log), a line per
reconcile and a line per event, printed by a real server process while another process deploys
and rolls back; and it records itself in the home so CLIs find it."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from model_helpers import register_version
from serve_process import Served

from core import get_context
from core.deployments import DeploymentConfig, get_deployment_manager
from core.events import Event
from core.server.presence import live_servers
from core.server.serve_log import event_line, reconcile_lines


@pytest.fixture
def deployed(sqlite_ctx) -> None:
    register_version("wd", "v1.0.0")
    register_version("wd", "v2.0.0", seed=1)
    manager = get_deployment_manager()
    manager.deploy_model(DeploymentConfig(model_id="wd", version="v1.0.0", deployment_id="wd_prod"))


def test_serve_prints_requests_reconciles_and_events(deployed) -> None:
    server = Served()
    try:
        server.wait_for(lambda line: "reconcile  wd_prod: serving wd:v1.0.0" in line, "reconcile")
        server.wait_until_announced()
        assert httpx.get(f"{server.url}/health").status_code == 200
        server.wait_for(lambda line: '"GET /health HTTP/1.1" 200' in line, "an access log line")
        assert [s.url for s in live_servers(get_context().db)] == [server.url]

        manager = get_deployment_manager()  # another process changes the desired state
        manager.deploy_model(
            DeploymentConfig(model_id="wd", version="v2.0.0", deployment_id="wd_prod")
        )
        server.wait_for(lambda line: "wd:v1.0.0 -> wd:v2.0.0" in line, "the reconcile")
        server.wait_for(
            lambda line: "deployment.deployed [wd_prod]" in line and "v2.0.0" in line,
            "the deploy event",
        )
        manager.rollback_deployment("wd_prod", reason="test rollback")
        server.wait_for(lambda line: "deployment.rolled_back [wd_prod]" in line, "rollback event")
        server.wait_for(lambda line: "wd:v2.0.0 -> wd:v1.0.0" in line, "the rollback reconcile")
    finally:
        assert server.stop() in (0, 130)  # 130: uvicorn re-raises the SIGINT it drained on
    assert live_servers(get_context().db) == []  # withdrawn on the way out
    assert not any("Traceback" in line for line in server.lines), "\n".join(server.lines)


def test_no_access_log_keeps_the_other_lines(deployed) -> None:
    server = Served("--no-access-log")
    try:
        server.wait_for(lambda line: "reconcile  wd_prod: serving" in line, "reconcile")
        server.wait_until_announced()
        for _ in range(3):
            assert httpx.get(f"{server.url}/health").status_code == 200
        get_deployment_manager().undeploy("wd_prod", reason="test")
        server.wait_for(lambda line: "stopped serving wd:v1.0.0" in line, "the undeploy")
    finally:
        server.stop()
    assert not any("GET /health" in line for line in server.lines)


def test_line_formats() -> None:
    assert reconcile_lines({"a": "m:v1", "b": "m:v1"}, {"a": "m:v2", "c": "m:v3"}) == [
        "reconcile  a: m:v1 -> m:v2",
        "reconcile  b: stopped serving m:v1",
        "reconcile  c: serving m:v3",
    ]
    assert reconcile_lines({"a": "m:v1"}, {"a": "m:v1"}) == []
    event = Event(1, datetime.now(UTC), "alert.firing", "warning", "prod", "p95 above 500 ms", {})
    assert event_line(event) == "event      warning  alert.firing [prod]: p95 above 500 ms"
