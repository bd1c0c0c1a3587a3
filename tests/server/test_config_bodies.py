"""POST /deployments and POST /experiments take typed bodies (the seed's config fields): the
OpenAPI document says what they hold, unknown keys and wrong types are a 422 in the endpoint's
error shape, partial sections merge over the defaults, and the answers are typed views.
On SQLite and PostgreSQL (``ctx``)."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from core.auth import get_token_store
from core.deployments import get_deployment_manager


@pytest.fixture
def admin(ctx, start_server, kit):
    kit.register("v1.0.0", seed=1)
    kit.register("v2.0.0", seed=2)
    running = start_server(get_deployment_manager())
    _, token = get_token_store().create("admin", "config-bodies")
    running.client.headers["Authorization"] = f"Bearer {token}"
    return running


def test_deploy_body_is_typed_and_partial_sections_merge(admin, kit) -> None:
    client = admin.client
    body = {
        "model_id": kit.MODEL,
        "version": "v1.0.0",
        "deployment_id": "typed",
        "resources": {"cpu": 2},
        "canary": {"steps": [10, 100]},
        "max_audio_seconds": 5.0,
    }
    answer = client.post("/deployments", json=body)
    assert answer.status_code == 201, answer.text
    config = answer.json()["config"]
    assert config["resources"] == {"cpu": 2, "memory": "2Gi", "gpu": 0}  # the rest: defaults
    assert config["canary"]["steps"] == [10, 100]
    assert config["canary"]["min_samples"] == 100
    assert answer.json()["deployment_id"] == "typed"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"colour": "blue"}, "colour"),  # unknown top-level field
        ({"resources": {"cpus": 2}}, "cpus"),  # unknown section key
        ({"resources": {"cpu": None}}, "cpu"),  # null where the section has no null
        ({"scaling": {"max_replicas": 1000}}, "max_replicas"),  # past the section's range
        ({"ensemble": {"models": ["a:1", "b:1"], "voting_strategy": "loudest"}}, "voting"),
        ({"traffic_percentage": "lots"}, "traffic_percentage"),
        ({"model_id": "a\u0000b"}, "model_id"),
    ],
)
def test_deploy_refuses_what_the_schema_refuses(admin, kit, change, where) -> None:
    body = {"model_id": kit.MODEL, "version": "v1.0.0", "deployment_id": "bad", **change}
    answer = admin.client.post("/deployments", json=body)
    assert answer.status_code == 422, answer.text
    assert set(answer.json()) >= {"detail"} and isinstance(answer.json()["detail"], str)
    assert where in answer.json()["detail"]
    assert admin.client.get("/deployments/bad").status_code == 404  # nothing was deployed


def test_experiment_body_is_typed_and_answers_an_experiment_view(admin, kit) -> None:
    client = admin.client
    body = {
        "experiment_id": "typed_exp",
        "name": "v1 vs v2",
        "model_variants": {"control": f"{kit.MODEL}:v1.0.0", "treatment": f"{kit.MODEL}:v2.0.0"},
        "traffic_allocation": {"control": 50, "treatment": 50},
        "success_metrics": ["accuracy"],
        "bandit_config": {"algorithm": "thompson_sampling", "floor": 10},
    }
    answer = client.post("/experiments", json=body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["experiment_id"] == "typed_exp" and created["status"] == "draft"
    assert created["config"]["allocation_mode"] == "thompson_sampling"  # the seed's bandit dict
    assert created["config"]["allocation_floor"] == 10
    status = client.get("/experiments/typed_exp").json()
    assert status["units"] == {"control": 0, "treatment": 0}
    refused = client.post("/experiments", json={**body, "experiment_id": "x", "extra": 1})
    assert refused.status_code == 422 and "extra" in refused.json()["detail"]
    wrong = client.post("/experiments", json={**body, "experiment_id": "y", "bandit_config": 3})
    assert wrong.status_code == 422
    assert client.get("/experiments/x").status_code == 404


def test_no_route_takes_or_answers_a_free_form_object(admin) -> None:
    """Every JSON request body and 2xx answer in /openapi.json names its fields."""
    spec = admin.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def free_form(schema: dict) -> bool:
        if "$ref" in schema:
            return False
        if "anyOf" in schema:
            return any(free_form(s) for s in schema["anyOf"] if s.get("type") != "null")
        if schema.get("type") == "array":
            return free_form(schema.get("items", {}))
        return schema.get("type") == "object" and "properties" not in schema

    found = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body and free_form(body["schema"]):
                found.append((method, path, "request"))
            for code, answer in op["responses"].items():
                content = answer.get("content", {}).get("application/json")
                if code.startswith("2") and content and free_form(content["schema"]):
                    found.append((method, path, code))
    assert found == []
    deploy = spec["paths"]["/deployments"]["post"]
    ref = deploy["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    fields = schemas[ref.rsplit("/", 1)[1]]["properties"]
    assert {"model_id", "version", "resources", "canary", "ensemble"} <= set(fields)
    assert {"401", "403", "409", "422"} <= set(deploy["responses"])
    from core.server.app import create_app

    routes = [r for r in create_app(admin.manager, background=False).routes]
    assert all(r.response_model is not None for r in routes if isinstance(r, APIRoute))
