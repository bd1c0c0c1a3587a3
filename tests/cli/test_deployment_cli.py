"""``nightscan deploy``, ``deployment ...`` and ``predict`` through Typer's runner: the happy
walk with --json, prediction in-process and through a running server, and one-line errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from core import ModelMetadata, ModelStatus, get_model_registry
from core.deployments import get_deployment_manager
from inference.architectures import build_model
from inference.synthetic import generate_call, write_wav
from nightscan_tui.cli import app

runner = CliRunner()
MODEL = "wildlife_detector"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
V1, V2 = f"{MODEL}:v1.0.0", f"{MODEL}:v2.0.0"


def nightscan(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "160"})


def one_line_error(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.fixture
def models(sqlite_ctx) -> None:
    for seed, version in enumerate(("v1.0.0", "v2.0.0")):
        torch.manual_seed(seed)
        get_model_registry().register_model(
            build_model("small_cnn", len(LABELS)),
            ModelMetadata(
                model_id=MODEL,
                version=version,
                status=ModelStatus.VALIDATION,
                training_config={"labels": LABELS},
            ),
        )


@pytest.fixture
def call_wav(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    write_wav(path, generate_call("robin", np.random.default_rng(3), seconds=1.5))
    return path


def test_deploy_status_health_rollback_undeploy(models, tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(
        textwrap.dedent(
            """
            traffic_percentage = 100.0
            max_audio_seconds = 30.0

            [resources]
            cpu = 1
            memory = "1Gi"

            [health_check]
            timeout = 5
            """
        )
    )
    result = nightscan("deploy", MODEL, "v1.0.0", "--deployment-id", "wd_prod",
                       "--environment", "staging", "--config", str(config))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "deployed wildlife_detector:v1.0.0 as wd_prod" in result.output
    result = nightscan("deploy", MODEL, "v2.0.0", "--deployment-id", "wd_prod")
    assert result.exit_code == 0, result.output

    rows = json.loads(nightscan("deployment", "list", "--json").output)
    assert [(r["deployment_id"], r["model_version"]) for r in rows] == [("wd_prod", V2)]
    table = nightscan("deployment", "list")
    assert table.exit_code == 0 and "wd_prod" in table.output and "healthy" in table.output

    status = json.loads(nightscan("deployment", "status", "wd_prod", "--json").output)
    assert status["model_version"] == V2 and status["environment"] == "production"
    assert [r["status"] for r in status["revisions"]] == ["replaced", "active"]
    first = nightscan("deployment", "status", "wd_prod")
    assert first.exit_code == 0 and "revision" in first.output

    health = nightscan("deployment", "health", "wd_prod", "--json")
    assert health.exit_code == 0, health.output
    report = json.loads(health.output)
    assert report["healthy"] is True and report["model_version"] == V2
    assert "healthy" in nightscan("deployment", "health", "wd_prod").output

    rolled = nightscan("deployment", "rollback", "wd_prod", "--reason", "bad canary")
    assert rolled.exit_code == 0 and "rolled back to wildlife_detector:v1.0.0" in rolled.output
    status = json.loads(nightscan("deployment", "status", "wd_prod", "--json").output)
    assert status["model_version"] == V1 and status["reason"] == "rolled back: bad canary"
    one_line_error(nightscan("deployment", "rollback", "wd_prod"), 4, "no earlier healthy version")

    undeployed = nightscan("deployment", "undeploy", "wd_prod", "--reason", "done")
    assert undeployed.exit_code == 0 and "undeployed wd_prod" in undeployed.output
    assert json.loads(nightscan("deployment", "list", "--json").output) == []
    stopped = json.loads(nightscan("deployment", "list", "--all", "--json").output)
    assert stopped[0]["status"] == "stopped" and stopped[0]["reason"] == "done"
    assert "no deployments" in nightscan("deployment", "list").output
    unhealthy = nightscan("deployment", "health", "wd_prod", "--json")
    assert unhealthy.exit_code == 1 and json.loads(unhealthy.output)["healthy"] is False
    assert get_model_registry().get_model(MODEL, "v1.0.0").status is ModelStatus.RETIRED


def test_predict_in_process_and_through_a_server(models, call_wav: Path) -> None:
    from core.server.app import create_app
    from core.server.runner import BackgroundServer

    assert nightscan("deploy", MODEL, "v1.0.0", "--deployment-id", "wd_prod").exit_code == 0
    local = nightscan("predict", str(call_wav), "--json")
    assert local.exit_code == 0, local.output
    body = json.loads(local.output)
    assert body["model_version"] == V1 and set(body["predictions"]["probabilities"]) == set(LABELS)
    text = nightscan("predict", str(call_wav))
    assert text.exit_code == 0 and "model wildlife_detector:v1.0.0" in text.output

    manager = get_deployment_manager()
    server = BackgroundServer(port=0, app=create_app(manager, background=False)).start()
    url = server.url
    try:
        remote = nightscan("predict", str(call_wav), "--url", url, "--json")
        assert remote.exit_code == 0, remote.output
        answer = json.loads(remote.output)
        assert answer["model_version"] == V1 and answer["deployment_id"] == "wd_prod"
        assert answer["predictions"]["probabilities"] == pytest.approx(
            body["predictions"]["probabilities"]
        )
        assert set(answer) == set(body)  # the same fields in both modes
        for target, code, message in (
            (("--experiment-id", "nope"), 3, "experiment nope does not exist"),
            (("--deployment-id", "nope"), 3, "deployment 'nope' does not exist"),
            (("--model", V2), 3, "no running deployment serves wildlife_detector:v2.0.0"),
            (("--model", "no-version"), 2, "expected MODEL_ID:VERSION"),
        ):
            # The same exit code and message in this process and through the server.
            one_line_error(nightscan("predict", str(call_wav), *target), code, message)
            remote = nightscan("predict", str(call_wav), "--url", url, *target)
            one_line_error(remote, code, message)
        by_model = nightscan("predict", str(call_wav), "--url", url, "--model", V1, "--json")
        assert json.loads(by_model.output)["deployment_id"] == "wd_prod"
    finally:
        server.stop()
    one_line_error(nightscan("predict", str(call_wav), "--url", url), 10, "cannot reach")


def test_bad_input_is_one_line_and_a_non_zero_exit(models, tmp_path: Path, call_wav) -> None:
    for verb in ("status", "health", "undeploy", "rollback"):
        one_line_error(nightscan("deployment", verb, "nope"), 3, "deployment 'nope' does not exist")
    one_line_error(nightscan("deploy", MODEL, "v9.9.9"), 3, "v9.9.9")
    one_line_error(nightscan("deploy", "no_such_model", "v1.0.0"), 3, "no_such_model")
    one_line_error(nightscan("predict", str(tmp_path / "missing.wav")), 3, "audio file not found")

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio")
    assert nightscan("deploy", MODEL, "v1.0.0").exit_code == 0
    one_line_error(nightscan("predict", str(not_audio)), 2, "could not decode")

    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("traffic_percentage = = 5\n")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"replicas": 3}))
    invalid = tmp_path / "invalid.toml"
    invalid.write_text("[scaling]\nmin_replicas = 4\nmax_replicas = 2\n")
    for path, message in (
        (tmp_path / "missing.toml", "config file not found"),
        (bad_toml, "cannot parse"),
        (unknown, "unknown deployment fields: replicas"),
        (invalid, "max_replicas (2) is below min_replicas (4)"),
    ):
        result = nightscan("deploy", MODEL, "v2.0.0", "--deployment-id", "other",
                           "--config", str(path))  # fmt: skip
        one_line_error(result, 2, message)
    one_line_error(nightscan("deploy", MODEL, "v2.0.0", "--traffic", "150"), 2,
                   "traffic_percentage must be a number between 0 and 100")  # fmt: skip
    assert [d.deployment_id for d in get_deployment_manager().list_deployments()] == [
        "wildlife_detector_v1_0_0_production"
    ]
