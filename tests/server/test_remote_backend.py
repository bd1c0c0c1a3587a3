"""RemoteBackend against a real uvicorn server (real HTTP, real tokens) over the same SQLite home
as the test: everything the console reads through the server equals what LocalBackend reads from
the core services directly, every change made through the server lands (audited under the
token's name), and every failure comes back as the core exception the server raised."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from core.auth import AuthenticationError, PermissionDeniedError, get_token_store
from core.backend import LocalBackend, RemoteBackend
from core.deployments import DeploymentConfig
from core.deployments.tracker import SecondSample
from core.errors import (
    ConflictError,
    DeploymentFailedError,
    IntegrityError,
    NotFoundError,
    UnreachableError,
    ValidationError,
)
from core.events import emit
from core.experiments import ExperimentConfig, get_ab_test_manager
from nightscan_tui.cli import app

V1, V2 = "v1.0.0", "v2.0.0"
EXP = "exp_remote"


def as_json(value: Any) -> Any:
    """What a dict looks like after the server's JSON round trip."""
    return json.loads(json.dumps(value, default=str))


def timeless(found: dict[str, Any]) -> dict[str, Any]:
    """An experiment dict without the values that move between two reads (the clock)."""
    return {k: v for k, v in found.items() if k not in ("duration_hours", "analyzed_at")}


def dead_url() -> str:
    """A loopback URL where nothing listens (a port that was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def connect(served) -> Iterator[Callable[..., RemoteBackend]]:
    """``connect(role="admin", name="ops-admin")`` -> a RemoteBackend on the served server with
    a fresh token of that role; every one is closed after the test."""
    opened: list[RemoteBackend] = []

    def make(role: str = "admin", name: str | None = None) -> RemoteBackend:
        _, secret = get_token_store().create(role, name or f"ops-{role}")
        backend = RemoteBackend(served.url, secret)
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def remote(connect) -> RemoteBackend:
    return connect("admin", "ops-admin")


@pytest.fixture
def local(served) -> LocalBackend:
    return LocalBackend()


@pytest.fixture
def experiment(remote, kit) -> str:
    """A running v1-vs-v2 experiment created and started through the server, with results."""
    config = ExperimentConfig(
        experiment_id=EXP,
        name="v1 vs v2 remotely",
        model_variants={
            "control": f"{kit.MODEL}:{V1}",
            "treatment": f"{kit.MODEL}:{V2}",
        },
        traffic_allocation={"control": 50.0, "treatment": 50.0},
        success_metrics=["accuracy"],
        minimum_sample_size=100,
    )
    created = remote.experiments.create_experiment(config)
    assert created.experiment_id == EXP and str(created.status) == "draft"
    started = remote.experiments.start_experiment(EXP)
    assert str(started.status) == "running"
    results = [
        (EXP, f"req-{i}", "control" if i % 2 else "treatment", {"accuracy": float(i % 3 != 0)})
        for i in range(12)
    ]
    get_ab_test_manager().record_results(results)
    return EXP


@pytest.fixture
def tampered_v2(served, sqlite_ctx, kit) -> None:
    """The stored weights of v2.0.0 (not deployed) no longer match their checksum."""
    digest = LocalBackend().registry.get_model(kit.MODEL, V2).checksum
    stored = sqlite_ctx.artifacts.path(digest)
    stored.write_bytes(stored.read_bytes()[:-8] + b"tampered")


# ---- connecting ------------------------------------------------------------------------------


def test_connecting_names_the_token(remote, served) -> None:
    assert remote.remote is True
    assert (remote.user, remote.role) == ("ops-admin", "admin")
    assert remote.location == served.url


# ---- registry --------------------------------------------------------------------------------


def test_list_models_reads_every_page(remote, local, monkeypatch) -> None:
    import core.remote.services

    monkeypatch.setattr(core.remote.services, "PAGE", 1)  # two versions: three requests
    assert remote.registry.list_models() == local.registry.list_models()


def test_registry_reads_equal_local(remote, local, kit) -> None:
    models = remote.registry.list_models()
    assert models == local.registry.list_models()
    assert [(m.version, str(m.status)) for m in models] == [(V1, "deployed"), (V2, "validation")]
    for version in (V1, V2):
        assert remote.registry.get_model(kit.MODEL, version) == local.registry.get_model(
            kit.MODEL, version
        )
        history = remote.registry.status_history(kit.MODEL, version)
        assert history and history == local.registry.status_history(kit.MODEL, version)
    pair = ((kit.MODEL, V1), (kit.MODEL, V2))
    assert remote.registry.compare_models(*pair) == as_json(local.registry.compare_models(*pair))


def test_set_tags_is_audited_under_the_token(remote, local, kit) -> None:
    before = local.registry.get_model(kit.MODEL, V2).tags
    assert "candidate" not in before
    meta = remote.registry.set_tags(kit.MODEL, V2, add=["candidate", "night"])
    assert {"candidate", "night"} <= set(meta.tags)
    assert local.registry.get_model(kit.MODEL, V2) == meta
    meta = remote.registry.set_tags(kit.MODEL, V2, remove=["night"])
    assert "night" not in meta.tags and "candidate" in meta.tags

    entry = local.audit(limit=1)[0]
    assert (entry.action, entry.entity_id) == ("model.tags", f"{kit.MODEL}:{V2}")
    assert entry.actor == "token:ops-admin"
    assert entry.before == {"tags": ["candidate", "night"]} and entry.after == {
        "tags": ["candidate"]
    }


def test_verify_weights_equals_local(remote, local, kit) -> None:
    found = remote.registry.verify_weights(kit.MODEL, V1)
    assert found == local.registry.verify_weights(kit.MODEL, V1)
    assert found["size"] > 0 and len(found["checksum"]) == 64


def test_update_status_moves_validation_to_testing(remote, local, kit) -> None:
    meta = remote.registry.update_status(kit.MODEL, V2, "testing", reason="remote check")
    assert str(meta.status) == "testing"
    assert local.registry.get_model(kit.MODEL, V2) == meta
    last = local.registry.status_history(kit.MODEL, V2)[-1]
    assert str(last.to_status) == "testing" and last.reason == "remote check"


def test_delete_model(remote, local, kit) -> None:
    remote.registry.delete_model(kit.MODEL, V2)
    assert [m.version for m in local.registry.list_models()] == [V1]
    with pytest.raises(NotFoundError):
        local.registry.get_model(kit.MODEL, V2)

    with pytest.raises(ConflictError, match="served by deployment"):
        remote.registry.delete_model(kit.MODEL, V1)
    assert local.registry.get_model(kit.MODEL, V1).version == V1


def test_unknown_version_is_not_found(remote, kit) -> None:
    with pytest.raises(NotFoundError, match="v9.9.9"):
        remote.registry.get_model(kit.MODEL, "v9.9.9")


# ---- experiments -----------------------------------------------------------------------------


def test_experiment_reads_equal_local(remote, local, experiment) -> None:
    assert remote.experiments.list_experiments() == local.experiments.list_experiments()
    info = remote.experiments.get_experiment(experiment)
    assert info == local.experiments.get_experiment(experiment)
    assert str(info.status) == "running"

    status = remote.experiments.get_experiment_status(experiment)
    expected = as_json(local.experiments.get_experiment_status(experiment))
    assert timeless(status) == timeless(expected)
    assert 0 < status["duration_hours"] <= expected["duration_hours"]
    assert status["results"]["control"]["accuracy"] == 6
    assert status["results"]["treatment"]["accuracy"] == 6

    analysis = remote.experiments.analyze_experiment(experiment)
    expected = as_json(local.experiments.analyze_experiment(experiment))
    assert timeless(analysis) == timeless(expected)
    assert analysis["analyzed_at"] <= expected["analyzed_at"]

    history = remote.experiments.allocation_history(experiment)
    assert history == local.experiments.allocation_history(experiment)
    assert [c.allocation for c in history] == [{"control": 50.0, "treatment": 50.0}]


def test_set_allocation_and_stop(remote, local, experiment) -> None:
    change = remote.experiments.set_allocation(experiment, {"control": 70.0, "treatment": 30.0})
    assert change.allocation == {"control": 70.0, "treatment": 30.0}
    assert change.actor == "token:ops-admin" and change.source == "manual"
    assert local.experiments.allocation_history(experiment)[-1] == change

    stopped = remote.experiments.stop_experiment(experiment, reason="enough")
    assert str(stopped.status) == "stopped"
    assert local.experiments.get_experiment(experiment) == stopped


# ---- deployments -----------------------------------------------------------------------------


def test_deployment_reads_equal_local(remote, local, kit) -> None:
    found = remote.deployments.list_deployments(include_stopped=True)
    assert found == local.deployments.list_deployments(include_stopped=True)
    assert [(d.deployment_id, d.version) for d in found] == [(kit.DEP, V1)]
    assert remote.deployments.get_deployment(kit.DEP) == local.deployments.get_deployment(kit.DEP)


def test_live_metrics_after_a_prediction(remote, served, kit) -> None:
    tracker = remote.deployments.performance_tracker
    wav = kit.wav_bytes(kit.call())
    response = served.client.post("/predict", files={"file": ("call.wav", wav, "audio/wav")})
    assert response.status_code == 200, response.text

    metrics = tracker.get_current_metrics(kit.DEP)
    assert metrics is not None and metrics.requests_in_window == 1
    samples = tracker.history(kit.DEP, seconds=60)
    assert samples and all(isinstance(s, SecondSample) for s in samples)
    assert sum(s.requests for s in samples) == 1

    health = remote.deployments.health(kit.DEP)
    assert health["healthy"] is True, health
    assert health["deployment_id"] == kit.DEP and health["model_version"] == f"{kit.MODEL}:{V1}"
    assert remote.deployments.get_deployment(kit.DEP).health == "healthy"


def test_no_canaries(remote, kit) -> None:
    assert remote.deployments.canaries.list_canaries() == []
    assert remote.deployments.canaries.active(kit.DEP) is None


def test_deploy_rollback_undeploy(remote, local, kit) -> None:
    config = DeploymentConfig(
        model_id=kit.MODEL,
        version=V2,
        deployment_id=kit.DEP,
        max_audio_seconds=kit.MAX_AUDIO_SECONDS,
    )
    assert remote.deployments.deploy_model(config) is True
    assert local.deployments.get_deployment(kit.DEP).version == V2

    back = remote.deployments.rollback_deployment(kit.DEP, reason="remote rollback")
    assert back.version == V1
    assert local.deployments.get_deployment(kit.DEP) == back

    remote.deployments.undeploy(kit.DEP, reason="remote undeploy")
    stopped = local.deployments.get_deployment(kit.DEP)
    assert stopped.status == "stopped"
    assert remote.deployments.get_deployment(kit.DEP) == stopped
    assert remote.deployments.list_deployments() == local.deployments.list_deployments() == []
    every = remote.deployments.list_deployments(include_stopped=True)
    assert every == local.deployments.list_deployments(include_stopped=True) == [stopped]


# ---- events and audit ------------------------------------------------------------------------


def test_events_and_audit_equal_local(remote, local, kit) -> None:
    remote.registry.set_tags(kit.MODEL, V2, add=["audited"])
    for i in range(2):  # events written here, in the shared database, read over HTTP
        emit("test.marker", f"marker {i}", source=kit.DEP, severity="warning", data={"i": i})
    events = remote.events()
    assert events == local.events()
    assert [e.message for e in events[:2]] == ["marker 1", "marker 0"]
    assert events[0].data == {"i": 1} and events[0].severity == "warning"
    first = events[-1].id  # newest first; after an id, oldest first
    later = remote.events(after_id=first)
    assert later == local.events(after_id=first)
    assert later and [e.id for e in later] == sorted(e.id for e in events[:-1])

    audit = local.audit()
    assert audit == remote.audit()
    assert audit[0].actor == "token:ops-admin" and audit[0].entity_id == f"{kit.MODEL}:{V2}"
    after_id = audit[-1].id  # oldest first after an id: everything newer than the oldest
    newer = remote.audit(after_id=after_id)
    assert newer and newer == local.audit(after_id=after_id)
    assert all(e.id > after_id for e in newer)


# ---- errors ----------------------------------------------------------------------------------


def test_viewer_mutation_is_permission_denied(served, kit) -> None:
    _, secret = get_token_store().create("viewer", "just-looking")
    viewer = RemoteBackend(served.url, secret)
    try:
        assert viewer.role == "viewer"
        assert viewer.registry.list_models()  # reading is fine
        with pytest.raises(PermissionDeniedError) as raised:
            viewer.registry.set_tags(kit.MODEL, V2, add=["nope"])
    finally:
        viewer.close()

    direct = served.client.post(
        f"/models/{kit.MODEL}/{V2}/tags",
        json={"add": ["nope"]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert direct.status_code == 403
    assert str(raised.value) == direct.json()["detail"]
    assert "just-looking" in str(raised.value) and "operator" in str(raised.value)
    assert "nope" not in LocalBackend().registry.get_model(kit.MODEL, V2).tags


def test_wrong_or_revoked_token_fails_at_construction(served) -> None:
    with pytest.raises(AuthenticationError, match="invalid or revoked token"):
        RemoteBackend(served.url, "nso_not-a-real-token")
    info, secret = get_token_store().create("admin", "soon-revoked")
    get_token_store().revoke(info.id)
    with pytest.raises(AuthenticationError, match="invalid or revoked token"):
        RemoteBackend(served.url, secret)


def test_corrupted_weights_come_back_as_integrity_error(
    remote, kit, tampered_v2, sqlite_ctx
) -> None:
    """The server names the core exception, so a shared status (500, 422) keeps its class;
    the message locates the file inside the home without naming the server's folders."""
    with pytest.raises(IntegrityError, match=f"checksum mismatch for {kit.MODEL}:{V2}") as err:
        remote.registry.verify_weights(kit.MODEL, V2)
    assert "artifacts/sha256/" in str(err.value)
    assert str(sqlite_ctx.settings.home) not in str(err.value)
    config = DeploymentConfig(model_id=kit.MODEL, version=V2, deployment_id="wd_other")
    with pytest.raises(DeploymentFailedError, match="checksum mismatch"):
        remote.deployments.deploy_model(config)


def test_dead_server_is_unreachable() -> None:
    url = dead_url()
    with pytest.raises(UnreachableError, match="cannot reach"):
        RemoteBackend(url, "x")


@pytest.mark.parametrize(
    ("url", "token", "message"),
    [("not a url", "x", "must be a URL"), ("http://127.0.0.1:1", "", "needs a token")],
)
def test_bad_arguments_are_validation_errors(url: str, token: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RemoteBackend(url, token)


# ---- CLI -------------------------------------------------------------------------------------


def test_tui_cli_reports_an_unreachable_server_in_one_line() -> None:
    url = dead_url()
    result = CliRunner().invoke(app, ["tui", "--server", url, "--token", "x"])
    assert result.exit_code == 10, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "cannot reach" in lines[0] and url in lines[0]
    assert result.stdout == ""  # the one line is on stderr


def test_tui_cli_refuses_home_with_server(tmp_path) -> None:
    args = ["tui", "--home", str(tmp_path), "--server", "http://x", "--token", "t"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "exclude each other" in result.output
