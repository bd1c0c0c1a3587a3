"""The CLI as a script sees it, in real subprocesses: exit codes and --json fields identical
in-process and through --url, output that is never cut when piped, --version, synth, help text
and metavars, `deployment health` asking the server that serves the home, metrics with an age."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from model_helpers import register_version

from core import get_context
from core.deployments import DeploymentConfig, get_deployment_manager
from core.experiments import ExperimentConfig, get_ab_test_manager
from core.server.app import create_app
from core.server.runner import BackgroundServer
from data.deployment_tables import PerformanceSnapshotRow
from data.server_tables import ServerProcessRow
from data.types import utcnow

LONG_ID = "a_model_id_long_enough_that_80_columns_would_cut_it_somewhere_in_the_middle"


def run(*args: str, ok: bool | None = None) -> subprocess.CompletedProcess:
    """`nightscan ARGS` in a fresh interpreter, stdout a pipe (not a terminal), no COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NIGHTSCAN_TOKEN")}
    result = subprocess.run(
        [sys.executable, "-m", "nightscan_tui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if ok:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def one_line_error(result: subprocess.CompletedProcess, code: int, message: str) -> None:
    assert result.returncode == code, result.stderr + result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def deployed(sqlite_ctx) -> str:
    register_version("wd", "v1.0.0")
    register_version("wd", "v2.0.0", seed=1)
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id="wd", version="v1.0.0", deployment_id="wd_prod")
    )
    return "wd_prod"


def test_version_and_help_follow_conventions() -> None:
    from importlib.metadata import version

    assert run("--version", ok=True).stdout.strip() == f"nightscan {version('nightscan-ops')}"
    for command in (["predict"], ["deployment", "list"], ["synth"], []):
        text = run(*command, "--help", ok=True).stdout
        assert "<bool>" not in text and "<str>" not in text.split("Options")[-1]
    predict_help = run("predict", "--help", ok=True).stdout
    assert "--model" in predict_help and "ID:VERSION" in predict_help


def test_piped_help_names_arguments_conventionally_and_is_not_cut() -> None:
    show = run("registry", "show", "--help", ok=True).stdout
    assert re.search(r"registry show \[OPTIONS\] REF\s*\n", show)
    assert "{REF}" not in show and "<str>" not in show
    predict = run("predict", "--help", ok=True).stdout
    assert "[OPTIONS] FILE" in predict and "{FILE}" not in predict and "<path>" not in predict
    compare = run("registry", "compare", "--help", ok=True).stdout
    assert "[OPTIONS] A B" in compare and "<str>" not in compare
    serve = run("serve", "--help", ok=True).stdout
    assert "--insecure-open-predict" in serve and "…" not in serve
    assert 80 < max(len(line.rstrip()) for line in serve.splitlines()) <= 100
    # The docstring's hard break after "starts or" is gone: the terminal wraps the paragraph.
    assert "starts or stops" in serve
    env = {**os.environ, "COLUMNS": "60"}
    narrow = subprocess.run(
        [sys.executable, "-m", "nightscan_tui.cli", "demo", "--help"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_every_option_has_help_text() -> None:
    import typer.main

    from nightscan_tui.cli import app

    missing = []

    def walk(command, path):
        for param in command.params:
            if not getattr(param, "help", None):
                missing.append(f"{path} {param.name}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "nightscan")
    assert missing == []


def test_synth_writes_the_generators_call(tmp_path: Path) -> None:
    from inference.synthetic import generate_call

    wav = tmp_path / "owl.wav"
    result = run("synth", "owl", "--out", str(wav), "--seconds", "1.5", "--seed", "3", ok=True)
    assert str(wav) in result.stdout
    audio, rate = sf.read(wav, dtype="float32")
    assert rate == 22_050 and len(audio) == int(1.5 * 22_050)
    np.testing.assert_array_equal(
        audio, generate_call("owl", np.random.default_rng(3), 22_050, 1.5)
    )
    again = tmp_path / "again.wav"
    run("synth", "owl", "--out", str(again), "--seconds", "1.5", "--seed", "3", ok=True)
    assert again.read_bytes() == wav.read_bytes()
    one_line_error(run("synth", "cat", "--out", str(wav)), 2, "unknown species 'cat'")
    one_line_error(run("synth", "owl", "--out", str(wav), "--seconds", "0"), 2, "--seconds")
    one_line_error(run("synth", "owl", "--out", "/no/such/dir/x.wav"), 2, "does not exist")


def test_piped_tables_are_never_cut(sqlite_ctx) -> None:
    meta = register_version(LONG_ID, "v1.0.0")
    listing = run("registry", "list", "--wide", ok=True).stdout
    assert LONG_ID in listing and meta.checksum in listing
    assert max(len(line) for line in listing.splitlines()) > 80


def test_predict_exit_codes_and_json_match_in_process_and_through_url(
    deployed, tmp_path: Path
) -> None:
    wav = tmp_path / "call.wav"
    run("synth", "robin", "--out", str(wav), "--seed", "1", ok=True)
    one_line_error(run("predict", str(wav), "--url", "http://127.0.0.1:1"), 10, "cannot reach")
    ab = get_ab_test_manager()
    ab.create_experiment(  # left DRAFT: routing a request for it is a conflict (409, exit 4)
        ExperimentConfig(
            experiment_id="draft_test",
            name="draft",
            model_variants={"control": "wd:v1.0.0", "treatment": "wd:v2.0.0"},
            traffic_allocation={"control": 50.0, "treatment": 50.0},
            success_metrics=["accuracy"],
        )
    )
    app = create_app(get_deployment_manager(), background=False)
    server = BackgroundServer(port=0, app=app).start()
    try:
        here = run("predict", str(wav), "--json", ok=True)
        there = run("predict", str(wav), "--json", "--url", server.url, ok=True)
        local, remote = json.loads(here.stdout), json.loads(there.stdout)
        assert set(local) == set(remote) and "variant" not in local
        assert local["experiment_info"] is None and remote["deployment_id"] == "wd_prod"
        for target, code, message in (
            (("--experiment-id", "draft_test"), 4, "draft_test"),
            (("--experiment-id", "nope"), 3, "experiment nope does not exist"),
            (("--model", "wd:v2.0.0"), 3, "no running deployment serves wd:v2.0.0"),
            (("--model", "nope:v1"), 3, "nope:v1 is not registered; see nightscan registry list"),
        ):
            one_line_error(run("predict", str(wav), *target), code, message)
            one_line_error(run("predict", str(wav), "--url", server.url, *target), code, message)
        by_model = run("predict", str(wav), "--model", "wd:v1.0.0", "--json", ok=True)
        assert json.loads(by_model.stdout)["model_version"] == "wd:v1.0.0"
    finally:
        server.stop()


def test_deployment_health_asks_the_server_that_serves_the_home(deployed) -> None:
    from core.auth import get_token_store

    alone = json.loads(run("deployment", "health", deployed, "--json", ok=True).stdout)
    assert alone["healthy"] and alone["server"] is None
    assert alone["checked_by"].startswith("probed in this process")

    app = create_app(get_deployment_manager(), background=False)
    server = BackgroundServer(port=0, app=app, announce=True).start()
    try:
        text = run("deployment", "health", deployed, ok=True).stdout
        assert f"the server at {server.url}" in text
        asked = json.loads(run("deployment", "health", deployed, "--json").stdout)
        assert asked["server"] == server.url and asked["model_version"] == "wd:v1.0.0"
        _, token = get_token_store().create("operator", "ops")
        probed = run("deployment", "health", deployed, "--json", "--token", token, ok=True)
        answer = json.loads(probed.stdout)
        assert answer["healthy"] and answer["latency_ms"] > 0
        assert answer["checked_by"] == f"probed now by the server at {server.url}"
        one_line_error(run("deployment", "health", "nope"), 3, "deployment 'nope' does not exist")
    finally:
        server.stop()
    after = json.loads(run("deployment", "health", deployed, "--json", ok=True).stdout)
    assert after["server"] is None  # the server withdrew its record when it stopped
    # A server killed a moment ago (its heartbeat still fresh) is skipped, not an error.
    with get_context().db.write() as session:
        session.add(
            ServerProcessRow(id="ghost", url="http://127.0.0.1:1", hostname=socket.gethostname(),
                             pid=1, started_at=utcnow(), seen_at=utcnow())
        )  # fmt: skip
    ghost = json.loads(run("deployment", "health", deployed, "--json", ok=True).stdout)
    assert ghost["server"] is None and ghost["checked_by"].startswith("probed in this process")
    one_line_error(
        run("deployment", "health", deployed, "--url", "http://127.0.0.1:1", "--in-process"),
        2,
        "exclude each other",
    )
    one_line_error(
        run("deployment", "health", deployed, "--url", "http://127.0.0.1:1"), 10, "cannot reach"
    )


def test_deployment_list_shows_the_age_of_its_metrics_and_hides_stale_ones(deployed) -> None:
    def snapshot(age_s: float, rps: float) -> None:
        at = utcnow() - timedelta(seconds=age_s)
        values = {
            "deployment_id": deployed,
            "model_version": "wd:v1.0.0",
            "timestamp": at.isoformat(),
            "requests_per_second": rps,
            "average_latency_ms": 5.0,
            "p50_latency_ms": 4.0,
            "p95_latency_ms": 9.5,
            "p99_latency_ms": 12.0,
            "error_rate": 0.0,
            "memory_usage_mb": 100.0,
            "cpu_usage_percent": 10.0,
        }
        with get_context().db.write() as session:
            session.add(
                PerformanceSnapshotRow(
                    deployment_id=deployed, model_version="wd:v1.0.0", at=at, metrics=values
                )
            )

    snapshot(age_s=40, rps=123.4)  # a server that stopped 40 s ago
    stale = run("deployment", "list", ok=True).stdout
    row = next(line for line in stale.splitlines() if deployed in line)
    assert "123.4" not in row and re.search(r"stale, \d+ s ago", row)
    snapshot(age_s=2, rps=56.7)
    fresh = run("deployment", "list", ok=True).stdout
    row = next(line for line in fresh.splitlines() if deployed in line)
    assert "56.7" in row and "9.5" in row and "stale" not in row
    assert re.search(r"\d+ s ago", row)
    status = run("deployment", "status", deployed, ok=True).stdout
    assert "metrics as of" in status and re.search(r"\d+ s ago", status)


def test_piped_audit_shows_changes_as_key_value_text(deployed) -> None:
    from core import get_model_registry

    get_model_registry().update_status("wd", "v2.0.0", "testing", reason="soak it")
    listing = run("audit", ok=True).stdout
    assert "status: validation -> testing (soak it)" in listing
    assert "{'" not in listing and "':" not in listing  # no Python dict repr anywhere
    assert max(len(line) for line in listing.splitlines()) < 400
