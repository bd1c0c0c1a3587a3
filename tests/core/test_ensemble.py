"""Ensemble deployments on a real SQLite database with tiny untrained models: weighted average
against the members' probabilities computed directly, majority votes (with label columns in
another order), validation at deploy time, shared member runtimes, restore and canary."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from core import ModelMetadata, ModelStatus, ValidationError, context, get_model_registry
from core.deployments import DeploymentConfig, DeploymentManager, get_deployment_manager
from core.deployments.ensemble import EnsembleSpec, combine
from inference.architectures import build_model
from inference.audio import fixed_windows, prepare_waveform
from inference.predict import predict_proba
from inference.synthetic import generate_call

MODEL = "wildlife_detector"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
DEP = "wd_ensemble"
MEMBERS = [f"{MODEL}:v1.0.0", f"{MODEL}:v2.0.0", f"{MODEL}:v3.0.0"]
AUDIO = generate_call("hawk", np.random.default_rng(3), seconds=2.5)  # three windows


def register(version: str, seed: int, labels: list[str] = LABELS, favour: str | None = None):
    """A tiny model; ``favour`` biases its head so that it always predicts that label."""
    torch.manual_seed(seed)
    model = build_model("small_cnn", len(labels))
    if favour is not None:
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        with torch.no_grad():
            head.bias[labels.index(favour)] += 50.0
    meta = ModelMetadata(model_id=MODEL, version=version, status=ModelStatus.VALIDATION,
                         training_config={"labels": labels})  # fmt: skip
    get_model_registry().register_model(model, meta)


def direct_probs(ref: str) -> np.ndarray:
    """One member's probabilities per window, straight from its weights (no serving stack)."""
    model_id, version = ref.split(":")
    module = get_model_registry().load_model(model_id, version)
    windows = fixed_windows(prepare_waveform(AUDIO, 22_050), 22_050)
    return predict_proba(module, windows)


def infer(mgr: DeploymentManager, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(mgr.run_inference(AUDIO, **kwargs))


def ensemble(strategy: str = "weighted_average", weights=(0.4, 0.4, 0.2), **kw) -> DeploymentConfig:
    spec = {"models": MEMBERS, "voting_strategy": strategy, "weights": list(weights)}
    return DeploymentConfig(deployment_id=DEP, ensemble=spec, **kw)


@pytest.fixture
def mgr(sqlite_ctx) -> DeploymentManager:
    return get_deployment_manager()


def test_weighted_average_is_the_weighted_mean_of_member_probabilities(mgr) -> None:
    for i, version in enumerate(("v1.0.0", "v2.0.0", "v3.0.0")):
        register(version, seed=i)
    mgr.deploy_model(DeploymentConfig(model_id=MODEL, version="v1.0.0", deployment_id="wd_a"))
    config = ensemble()
    assert (config.model_id, config.version) == (MODEL, "v1.0.0")  # the first member
    assert mgr.deploy_model(config) is True

    result = infer(mgr, deployment_id=DEP)
    expected = sum(w * direct_probs(ref) for w, ref in zip((0.4, 0.4, 0.2), MEMBERS, strict=True))
    expected = expected.mean(axis=0)  # the predictor averages the windows
    got = np.array([result["predictions"]["probabilities"][label] for label in LABELS])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert result["predictions"]["predicted_class"] == LABELS[int(expected.argmax())]
    assert result["model_version"].startswith(f"ensemble:{DEP}@")
    assert result["ensemble"] == {
        "models": MEMBERS, "voting_strategy": "weighted_average", "weights": [0.4, 0.4, 0.2],
        "members": MEMBERS,
    }  # fmt: skip
    # Members run on the pool's runtimes: v1 is shared with the plain deployment wd_a.
    served = mgr.pool.models[result["model_version"]]
    assert served.members[0].runtime is mgr.pool.model_for("wd_a")[1].runtime
    for member in served.members:
        rows = sum(size * n for size, n in member.runtime.batch_size_counts().items())
        assert rows >= 3  # every member saw the request's three windows
    assert mgr.health(DEP)["healthy"] is True
    assert get_model_registry().get_model(MODEL, "v1.0.0").status is ModelStatus.DEPLOYED


def test_majority_vote_with_weights_and_reordered_labels(mgr) -> None:
    register("v1.0.0", seed=0, favour="owl")
    register("v2.0.0", seed=1, favour="owl")
    shuffled = ["background", "robin", "hawk", "owl", "sparrow"]  # same set, other order
    register("v3.0.0", seed=2, labels=shuffled, favour="hawk")
    mgr.deploy_model(ensemble("majority", weights=(1, 1, 1)))
    result = infer(mgr, deployment_id=DEP)
    probs = result["predictions"]["probabilities"]
    assert result["predictions"]["predicted_class"] == "owl"
    assert probs["owl"] == pytest.approx(2 / 3, abs=1e-4)
    assert probs["hawk"] == pytest.approx(1 / 3, abs=1e-4)  # v3's column was aligned by name

    mgr.deploy_model(ensemble("majority", weights=(0.2, 0.2, 0.6)))  # replaces the spec
    result = infer(mgr, deployment_id=DEP)
    assert result["predictions"]["predicted_class"] == "hawk"
    assert result["predictions"]["probabilities"]["hawk"] == pytest.approx(0.6, abs=1e-4)


def test_combine_on_known_numbers() -> None:
    a = np.array([[0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    b = np.array([[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
    c = np.array([[0.1, 0.6, 0.3], [0.5, 0.4, 0.1]])
    avg = combine([a, b, c], (2.0, 1.0, 1.0), "weighted_average")
    np.testing.assert_allclose(avg, (2 * a + b + c) / 4, atol=1e-6)
    votes = combine([a, b, c], (2.0, 1.0, 1.0), "majority")
    # Window 0: a votes 0 (weight 2), b and c vote 1 (1 + 1): a tie, which the weighted
    # average breaks (0.45 for class 1 against 0.275 for class 0).
    assert votes[0].argmax() == 1 and votes[0][0] == pytest.approx(0.5, abs=1e-4)
    np.testing.assert_allclose(votes[1], [0.25, 0, 0.75], atol=1e-4)
    np.testing.assert_allclose(votes.sum(axis=1), 1.0, atol=1e-6)


def test_label_set_mismatch_is_refused_before_anything_loads(mgr) -> None:
    register("v1.0.0", seed=0)
    register("v2.0.0", seed=1)
    register("v3.0.0", seed=2, labels=["owl", "hawk", "sparrow", "robin", "frog"])
    with pytest.raises(ValidationError, match="ensemble members must share their labels") as e:
        mgr.deploy_model(ensemble())
    assert "frog" in str(e.value) and f"{MODEL}:v3.0.0" in str(e.value)
    assert mgr.list_deployments(include_stopped=True) == []
    assert get_model_registry().get_model(MODEL, "v3.0.0").status is ModelStatus.VALIDATION
    assert mgr.pool.models == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"models": MEMBERS, "weights": [1, 1]}, "one weight per model"),
        ({"models": MEMBERS, "weights": [1, -1, 1]}, "non-negative"),
        ({"models": MEMBERS, "weights": [0, 0, 0]}, "must not all be zero"),
        ({"models": MEMBERS, "voting_strategy": "median"}, "voting_strategy 'median'"),
        ({"models": MEMBERS[:1]}, "at least two"),
        ({"models": [MEMBERS[0], MEMBERS[0]]}, "lists a version twice"),
        ({"models": ["no_version", MEMBERS[0]]}, "expected MODEL_ID:VERSION"),
        ({"models": MEMBERS, "vote": "x"}, "unknown ensemble keys: vote"),
    ],
)
def test_ensemble_spec_is_validated(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeploymentConfig(deployment_id=DEP, ensemble=spec).validate()


def test_member_that_is_not_named_or_not_servable_is_refused(mgr) -> None:
    for i, version in enumerate(("v1.0.0", "v2.0.0", "v3.0.0")):
        register(version, seed=i)
    with pytest.raises(ValidationError, match="not a member of the ensemble"):
        mgr.deploy_model(ensemble(model_id=MODEL, version="v9.0.0"))
    get_model_registry().update_status(MODEL, "v3.0.0", ModelStatus.FAILED, reason="bad")
    with pytest.raises(ValidationError, match="member wildlife_detector:v3.0.0 is FAILED"):
        mgr.deploy_model(ensemble())
    assert DeploymentConfig.from_dict({"deployment_id": DEP, "ensemble": ensemble().ensemble})


def test_ensemble_is_restored_canaried_and_rolled_back(sqlite_ctx, mgr) -> None:
    for i, version in enumerate(("v1.0.0", "v2.0.0", "v3.0.0")):
        register(version, seed=i)
    mgr.deploy_model(DeploymentConfig(model_id=MODEL, version="v1.0.0", deployment_id=DEP))
    # Named after its member v2: revisions keep that version, so rollback finds v1 before it.
    canary = ensemble(model_id=MODEL, version="v2.0.0", canary_deployment=True,
                      traffic_percentage=50)  # fmt: skip
    mgr.deploy_model(canary)
    route = mgr.pool.deployments[DEP].canary
    ref = EnsembleSpec.parse(canary.ensemble).ref(DEP)
    assert route.model.model_ref == ref and route.weight == 50
    mgr.canaries.promote(DEP)
    assert infer(mgr)["model_version"] == ref
    before = infer(mgr)["predictions"]["probabilities"]

    fresh = context.configure(sqlite_ctx.settings.home, sqlite_ctx.settings.database_url)
    try:
        restarted = get_deployment_manager()
        restarted.reconcile()
        result = infer(restarted)
        assert result["model_version"] == ref
        assert result["predictions"]["probabilities"] == pytest.approx(before, abs=1e-6)
        info = restarted.rollback_deployment(DEP, "back to the single model")
        assert info.version == "v1.0.0" and info.config.ensemble is None
        assert infer(restarted)["model_version"] == f"{MODEL}:v1.0.0"
    finally:
        fresh.close()
