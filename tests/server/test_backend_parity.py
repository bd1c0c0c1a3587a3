"""The console's seam (``core.backend.ConsoleBackend``) held to its word: LocalBackend and
RemoteBackend have the Protocol's signatures, and one scenario on one database (a real uvicorn
server over the test's SQLite home) calls every method of the seam on both, each change made
by one side and read back by the other, every read answered alike."""

from __future__ import annotations

import inspect
import json
from collections import Counter
from typing import Any

import pytest

from core.backend import SEAM, ConsoleBackend, LocalBackend, RemoteBackend, seam_methods
from core.deployments import DeploymentConfig
from core.errors import ValidationError
from core.events import emit
from core.experiments import ExperimentConfig, get_ab_test_manager

V1, V2 = "v1.0.0", "v2.0.0"
CALM = {"analysis_interval_s": 3600, "step_seconds": 3600, "min_samples": 20, "min_feedback": 10}


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def timeless(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if k not in ("duration_hours", "analyzed_at")}


CLOCKED = ("next_analysis_in_s", "seconds_at_weight")  # canary fields that move with the clock


def still(found: Any) -> Any:
    """A canary dict (or a list of them) without the fields that move between two reads."""
    if isinstance(found, list):
        return [still(f) for f in found]
    if isinstance(found, dict):
        return {k: v for k, v in found.items() if k not in CLOCKED}
    return found


class Recording:
    """A backend (or one of its parts) that counts which seam methods were called."""

    def __init__(self, target: Any, calls: Counter[str], path: str = "") -> None:
        self._target, self._calls, self._path = target, calls, path

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        path = f"{self._path}.{name}" if self._path else name
        if path in SEAM:
            return Recording(value, self._calls, path)
        if callable(value):

            def call(*args: Any, **kwargs: Any) -> Any:
                self._calls[path] += 1
                return value(*args, **kwargs)

            return call
        return value


def every_seam_method() -> set[str]:
    return {
        f"{part}.{name}" if part else name
        for part, protocol in SEAM.items()
        for name in seam_methods(protocol)
    }


def parts(backend: Any) -> dict[str, Any]:
    found = {"": backend}
    for path in SEAM:
        if path:
            obj = backend
            for name in path.split("."):
                obj = getattr(obj, name)
            found[path] = obj
    return found


def check_signature(protocol: type, name: str, impl: Any) -> dict[str, Any]:
    """The implementation accepts the Protocol's parameters, in order, with its defaults; it
    may add optional ones. Returns the implementation's defaults where the Protocol has one."""
    wanted = list(inspect.signature(getattr(protocol, name)).parameters.values())[1:]
    have = list(inspect.signature(getattr(impl, name)).parameters.values())
    where = f"{type(impl).__name__}.{name}"
    assert [p.name for p in have[: len(wanted)]] == [p.name for p in wanted], where
    for want, got in zip(wanted, have, strict=False):
        assert want.kind == got.kind, f"{where}({want.name}) is {got.kind}, not {want.kind}"
        if want.default is inspect.Parameter.empty:
            continue
        assert got.default is not inspect.Parameter.empty, f"{where}({want.name}) has no default"
        if want.default is not Ellipsis:
            assert got.default == want.default, f"{where}({want.name}={got.default!r})"
    for extra in have[len(wanted) :]:
        assert extra.default is not inspect.Parameter.empty, f"{where} requires {extra.name}"
    return {
        got.name: got.default
        for want, got in zip(wanted, have, strict=False)
        if want.default is not inspect.Parameter.empty
    }


def test_local_and_remote_implement_the_seam_alike(served, kit) -> None:
    from core.auth import get_token_store

    _, secret = get_token_store().create("admin", "ops-admin")
    remote_backend = RemoteBackend(served.url, secret)
    try:
        run_scenario(LocalBackend(), remote_backend, served, kit)
    finally:
        remote_backend.close()


def run_scenario(local_backend: LocalBackend, remote_backend: RemoteBackend, served, kit) -> None:
    # ---- the signatures ----------------------------------------------------------------------
    for backend in (local_backend, remote_backend):
        assert isinstance(backend, ConsoleBackend)
    local_parts, remote_parts = parts(local_backend), parts(remote_backend)
    for path, protocol in SEAM.items():
        for name in seam_methods(protocol):
            mine = check_signature(protocol, name, local_parts[path])
            theirs = check_signature(protocol, name, remote_parts[path])
            assert mine == theirs, f"{path}.{name}: defaults {mine} locally, {theirs} remotely"

    local_calls: Counter[str] = Counter()
    remote_calls: Counter[str] = Counter()
    L = Recording(local_backend, local_calls)
    R = Recording(remote_backend, remote_calls)
    M, DEP, TOKEN = kit.MODEL, kit.DEP, "token:ops-admin"

    # ---- registry ----------------------------------------------------------------------------
    assert R.registry.list_models() == L.registry.list_models()
    for version in (V1, V2):
        assert R.registry.get_model(M, version) == L.registry.get_model(M, version)
        assert R.registry.status_history(M, version) == L.registry.status_history(M, version)
    pair = ((M, V1), (M, V2))
    assert R.registry.compare_models(*pair) == as_json(L.registry.compare_models(*pair))
    assert R.registry.verify_weights(M, V1) == L.registry.verify_weights(M, V1)

    meta = R.registry.update_status(M, V2, "testing", reason="parity", actor=TOKEN)
    assert L.registry.get_model(M, V2) == meta and str(meta.status) == "testing"
    meta = L.registry.update_status(M, V2, "validation", reason="back", actor="local-op")
    assert R.registry.get_model(M, V2) == meta
    changes = R.registry.status_history(M, V2)[-2:]
    assert [(c.actor, str(c.to_status)) for c in changes] == [
        (TOKEN, "testing"),
        ("local-op", "validation"),
    ]
    meta = R.registry.set_tags(M, V2, add=["parity", "night"])
    assert L.registry.get_model(M, V2) == meta
    meta = L.registry.set_tags(M, V2, remove=["night"])
    assert R.registry.get_model(M, V2) == meta and "night" not in meta.tags
    with pytest.raises(ValidationError, match="records changes as token:ops-admin"):
        R.registry.set_tags(M, V2, add=["spoofed"], actor="someone-else")
    assert "spoofed" not in L.registry.get_model(M, V2).tags

    # ---- experiments -------------------------------------------------------------------------
    def config(experiment_id: str) -> ExperimentConfig:
        return ExperimentConfig(
            experiment_id=experiment_id,
            name=f"{experiment_id} parity",
            model_variants={"control": f"{M}:{V1}", "treatment": f"{M}:{V2}"},
            traffic_allocation={"control": 50.0, "treatment": 50.0},
            success_metrics=["accuracy"],
            minimum_sample_size=100,
        )

    created = R.experiments.create_experiment(config("exp_r"))
    assert L.experiments.get_experiment("exp_r") == created
    created = L.experiments.create_experiment(config("exp_l").to_dict(), actor="local-op")
    assert R.experiments.get_experiment("exp_l") == created
    assert str(L.experiments.start_experiment("exp_r").status) == "running"
    assert R.experiments.get_experiment("exp_r") == L.experiments.get_experiment("exp_r")
    arms = ("control", "treatment")
    results = [("exp_r", f"req-{i}", arms[i % 2], {"accuracy": i % 3 != 0}) for i in range(12)]
    get_ab_test_manager().record_results(results)
    assert R.experiments.list_experiments() == L.experiments.list_experiments()
    running = R.experiments.list_experiments("running")
    assert running == L.experiments.list_experiments("running")
    assert [i.experiment_id for i in running] == ["exp_r"]
    status = R.experiments.get_experiment_status("exp_r")
    assert timeless(status) == timeless(as_json(L.experiments.get_experiment_status("exp_r")))
    analysis = R.experiments.analyze_experiment("exp_r")
    assert timeless(analysis) == timeless(as_json(L.experiments.analyze_experiment("exp_r")))
    change = R.experiments.set_allocation("exp_r", {"control": 70.0, "treatment": 30.0})
    assert L.experiments.allocation_history("exp_r")[-1] == change and change.actor == TOKEN
    change = L.experiments.set_allocation("exp_r", {"control": 40.0, "treatment": 60.0})
    assert R.experiments.allocation_history("exp_r") == L.experiments.allocation_history("exp_r")
    assert R.experiments.allocation_history("exp_r")[-1] == change
    stopped = R.experiments.stop_experiment("exp_r", reason="enough", actor=TOKEN)
    assert L.experiments.get_experiment("exp_r") == stopped and str(stopped.status) == "stopped"
    R.experiments.start_experiment("exp_l")
    stopped = L.experiments.stop_experiment("exp_l", reason="enough here")
    assert R.experiments.get_experiment("exp_l") == stopped

    # ---- deployments, live numbers -----------------------------------------------------------
    assert R.deployments.list_deployments() == L.deployments.list_deployments()
    assert R.deployments.get_deployment(DEP) == L.deployments.get_deployment(DEP)
    wav = kit.wav_bytes(kit.call())
    answer = served.client.post("/predict", files={"file": ("call.wav", wav, "audio/wav")})
    assert answer.status_code == 200, answer.text
    mine = L.deployments.performance_tracker.get_current_metrics(DEP)
    theirs = R.deployments.performance_tracker.get_current_metrics(DEP)
    assert mine is not None and theirs is not None
    assert mine.requests_in_window == theirs.requests_in_window == 1
    for tracker in (L.deployments.performance_tracker, R.deployments.performance_tracker):
        assert sum(s.requests for s in tracker.history(DEP, seconds=60)) == 1
    # The per-process breakdown of the live panel: the same processes on both sides.
    by_process = L.deployments.performance_tracker.by_process(DEP)
    assert R.deployments.performance_tracker.by_process(DEP).keys() == by_process.keys()
    mine, theirs = L.deployments.get_status(DEP), R.deployments.get_status(DEP)
    moving = ("metrics", "last_health_check")
    assert {k: v for k, v in theirs.items() if k not in moving} == as_json(
        {k: v for k, v in mine.items() if k not in moving}
    )
    assert R.deployments.health(DEP)["healthy"] is L.deployments.health(DEP)["healthy"] is True

    # ---- canaries: every action from each side -----------------------------------------------
    def canary_config() -> DeploymentConfig:
        return DeploymentConfig(
            model_id=M,
            version=V2,
            deployment_id=DEP,
            canary_deployment=True,
            traffic_percentage=10,
            canary=CALM,
            max_audio_seconds=kit.MAX_AUDIO_SECONDS,
        )

    def canaries_agree() -> dict[str, Any] | None:
        found = R.deployments.canaries.active(DEP)
        assert still(found) == still(as_json(L.deployments.canaries.active(DEP)))
        every = R.deployments.canaries.list_canaries(include_ended=True)
        assert still(every) == still(as_json(L.deployments.canaries.list_canaries(True)))
        running = R.deployments.canaries.list_canaries()
        assert still(running) == still(as_json(L.deployments.canaries.list_canaries()))
        if found is not None:
            latest = R.deployments.canaries.status(DEP, checks=3)
            assert still(latest) == still(as_json(L.deployments.canaries.status(DEP, checks=3)))
            assert still(latest) == still(found | {"checks": latest["checks"]})
        return found

    assert canaries_agree() is None
    assert R.deployments.deploy_model(canary_config()) is True
    assert canaries_agree()["state"] == "progressing"
    R.deployments.canaries.pause(DEP)
    assert canaries_agree()["state"] == "paused"
    L.deployments.canaries.resume(DEP)
    assert canaries_agree()["state"] == "progressing"
    L.deployments.canaries.pause(DEP, actor="local-op")
    R.deployments.canaries.resume(DEP, actor=TOKEN)
    R.deployments.canaries.abort(DEP, reason="parity abort")
    assert canaries_agree() is None
    assert L.deployments.deploy_model(canary_config()) is True
    L.deployments.canaries.abort(DEP)
    assert canaries_agree() is None
    assert R.deployments.canaries.list_canaries(include_ended=True)[0]["state"] == "aborted"

    L.deployments.deploy_model(canary_config())
    L.deployments.canaries.promote(DEP, reason="local promotion")
    assert R.deployments.get_deployment(DEP).version == V2
    back = R.deployments.rollback_deployment(DEP, reason="parity rollback")
    assert back.version == V1 and L.deployments.get_deployment(DEP) == back
    R.deployments.deploy_model(canary_config())
    R.deployments.canaries.promote(DEP)
    assert L.deployments.get_deployment(DEP).version == V2
    back = L.deployments.rollback_deployment(DEP)
    assert R.deployments.get_deployment(DEP) == back and back.version == V1
    with pytest.raises(ValidationError, match="cannot mark the version failed"):
        R.deployments.rollback_deployment(DEP, failed=True)

    R.deployments.undeploy(DEP, reason="parity undeploy")
    assert L.deployments.list_deployments() == R.deployments.list_deployments() == []
    every = R.deployments.list_deployments(include_stopped=True)
    assert every == L.deployments.list_deployments(include_stopped=True)
    second = DeploymentConfig(model_id=M, version=V1, deployment_id="wd_two")
    assert L.deployments.deploy_model(second) is True
    assert [d.deployment_id for d in R.deployments.list_deployments()] == ["wd_two"]
    L.deployments.undeploy("wd_two", reason="locally")
    assert str(R.deployments.get_deployment("wd_two").status) == "stopped"

    # ---- events, audit, quality --------------------------------------------------------------
    emit("test.marker", "parity marker", source=DEP, severity="warning", data={"n": 1})
    events = R.events()
    assert events == L.events() and events[0].message == "parity marker"
    first = events[-1].id
    assert R.events(after_id=first, limit=5) == L.events(after_id=first, limit=5)
    audit = R.audit()
    assert audit == L.audit() and {e.actor for e in audit} >= {TOKEN, "local-op"}
    assert R.audit(after_id=audit[-1].id) == L.audit(after_id=audit[-1].id)
    mine = as_json(L.quality(DEP, window="all"))
    theirs = R.quality(DEP, window="all")
    assert {k: v for k, v in theirs.items() if k != "generated_at"} == {
        k: v for k, v in mine.items() if k != "generated_at"
    }

    # ---- deleting versions ----------------------------------------------------------------------
    kit.register("v3.0.0", seed=3)
    kit.register("v4.0.0", seed=4)
    R.registry.delete_model(M, "v3.0.0")
    L.registry.delete_model(M, "v4.0.0", actor="local-op")
    versions = [m.version for m in R.registry.list_models()]
    assert versions == [m.version for m in L.registry.list_models()] == [V1, V2]

    # ---- every method of the seam, on both sides ---------------------------------------------
    expected = every_seam_method() - {"close"}  # closing is the fixture's
    assert set(local_calls) == expected, sorted(expected ^ set(local_calls))
    assert set(remote_calls) == expected, sorted(expected ^ set(remote_calls))
