"""The model registry on a real database (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import pickle
from datetime import UTC, datetime

import pytest
import torch
from blob_helpers import tamper_stored_weights

from core import (
    ConflictError,
    IntegrityError,
    InvalidTransitionError,
    ModelMetadata,
    ModelStatus,
    NotFoundError,
    UnsafeArtifactError,
    ValidationError,
    get_model_registry,
)
from inference.architectures import build_model

LABELS = ["owl", "hawk", "sparrow", "robin", "background"]


def make_meta(version: str, **overrides) -> ModelMetadata:
    fields = dict(
        model_id="wildlife_detector",
        version=version,
        name=f"Wildlife Detector {version}",
        description="test model",
        created_at=datetime.now(),
        status=ModelStatus.TRAINING,
        framework="pytorch",
        architecture="small_cnn",
        dataset_version="synthetic-v1",
        training_config={"epochs": 1, "labels": LABELS},
        metrics={"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "f1_score": 0.9},
        file_size_bytes=0,
        checksum="",
        tags=["test"],
    )
    fields.update(overrides)
    return ModelMetadata(**fields)


def small_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", len(LABELS)).eval()


def test_register_computes_checksum_and_size(ctx):
    registry = get_model_registry()
    meta = make_meta("v2.1.0")
    assert registry.register_model(small_model(), meta) is True
    assert len(meta.checksum) == 64 and int(meta.checksum, 16) >= 0
    stored = ctx.artifacts.path(meta.checksum)
    assert meta.file_size_bytes == stored.stat().st_size > 0
    got = registry.get_model("wildlife_detector", "v2.1.0")
    assert got.checksum == meta.checksum and got.metrics["accuracy"] == 0.9
    assert got.created_at.tzinfo is not None
    audit = ctx.audit.entries(action="model.register")
    assert audit[0].entity_id == "wildlife_detector:v2.1.0" and audit[0].actor == "tester"


def test_load_model_returns_the_same_network(ctx):
    registry = get_model_registry()
    model = small_model(3)
    registry.register_model(model, make_meta("v1.0.0"))
    loaded = registry.load_model("wildlife_detector", "v1.0.0")
    x = torch.randn(2, 22050)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))
    assert not loaded.training


def test_duplicate_and_invalid_registrations_are_refused(ctx):
    registry = get_model_registry()
    registry.register_model(small_model(), make_meta("v1.0.0"))
    with pytest.raises(ConflictError, match="already registered"):
        registry.register_model(small_model(), make_meta("v1.0.0"))
    with pytest.raises(ValidationError, match="invalid model_id"):
        registry.register_model(small_model(), make_meta("v1.0.1", model_id="bad id!"))
    with pytest.raises(ValidationError, match="unknown architecture|Unknown architecture"):
        registry.register_model(small_model(), make_meta("v1.0.2", architecture="nope"))
    with pytest.raises(ValidationError, match="do not fit"):
        registry.register_model(small_model(), make_meta("v1.0.3", architecture="resnet18"))
    assert registry.count_models() == 1


def test_list_filters_orders_and_pages(ctx):
    registry = get_model_registry()
    for i, version in enumerate(["v2.10.0", "v2.9.0", "v2.1.0", "v1.0.0"]):
        registry.register_model(
            small_model(i), make_meta(version, tags=["even"] if i % 2 == 0 else ["odd"])
        )
    registry.register_model(small_model(9), make_meta("v0.1.0", model_id="other"))
    registry.update_status("wildlife_detector", "v2.9.0", "validation")

    versions = [m.version for m in registry.list_models(model_id="wildlife_detector")]
    assert versions == ["v1.0.0", "v2.1.0", "v2.9.0", "v2.10.0"]
    assert [m.version for m in registry.list_models(status="VALIDATION")] == ["v2.9.0"]
    assert [m.version for m in registry.list_models(tag="even")] == ["v2.1.0", "v2.10.0"]
    assert registry.list_models(framework="onnx") == []
    page = registry.list_models(model_id="wildlife_detector", limit=2, offset=1)
    assert [m.version for m in page] == ["v2.1.0", "v2.9.0"]
    assert [m.model_id for m in registry.list_models()][-1] == "wildlife_detector"
    assert registry.count_models(model_id="wildlife_detector") == 4
    assert registry.get_latest_version("wildlife_detector").version == "v2.10.0"


def test_illegal_transition_names_the_allowed_ones(ctx):
    registry = get_model_registry()
    registry.register_model(small_model(), make_meta("v1.0.0"))
    with pytest.raises(InvalidTransitionError) as info:
        registry.update_status("wildlife_detector", "v1.0.0", "deployed")
    assert "TRAINING to DEPLOYED" in str(info.value)
    assert "VALIDATION" in str(info.value) and "FAILED" in str(info.value)
    assert registry.get_model("wildlife_detector", "v1.0.0").status is ModelStatus.TRAINING


def test_compare_models_shape_and_direction(ctx):
    registry = get_model_registry()
    registry.register_model(
        small_model(1),
        make_meta("v2.0.0", metrics={"accuracy": 0.80, "inference_time": 0.040, "f1_score": 0.0}),
    )
    registry.register_model(
        small_model(2),
        make_meta("v2.1.0", metrics={"accuracy": 0.88, "inference_time": 0.030, "f1_score": 0.5}),
    )
    comparison = registry.compare_models(
        ("wildlife_detector", "v2.0.0"), ("wildlife_detector", "v2.1.0")
    )
    acc = comparison["metric_differences"]["accuracy"]
    assert acc["model_a"] == 0.80 and acc["model_b"] == 0.88
    assert acc["difference"] == pytest.approx(0.08)
    assert acc["percentage_improvement"] == pytest.approx(10.0)
    assert acc["better"] == "model_b"
    latency = comparison["metric_differences"]["inference_time"]
    assert latency["higher_is_better"] is False
    assert latency["percentage_improvement"] == pytest.approx(25.0)  # 40 ms -> 30 ms is better
    assert latency["absolute_difference"] == pytest.approx(0.010)
    assert comparison["metric_differences"]["f1_score"]["percentage_improvement"] is None
    assert comparison["model_a"]["version"] == "v2.0.0"
    with pytest.raises(NotFoundError):
        registry.compare_models(("wildlife_detector", "v2.0.0"), ("wildlife_detector", "v9"))


def test_tampered_artifact_fails_every_load_with_a_clear_error(ctx):
    registry = get_model_registry()
    meta = make_meta("v1.0.0")
    registry.register_model(small_model(), meta)
    tamper_stored_weights(ctx, meta.checksum)  # one byte of every copy
    for _ in range(2):
        with pytest.raises(IntegrityError) as info:
            registry.load_model("wildlife_detector", "v1.0.0")
        message = str(info.value)
        assert "wildlife_detector:v1.0.0" in message
        assert meta.checksum in message
        assert "actual" in message
    failures = ctx.audit.entries(action="model.integrity_failure")
    assert len(failures) == 2 and meta.checksum in failures[0].detail


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the crafted file
def test_weights_that_need_unrestricted_pickle_are_refused_and_never_run(ctx, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with evil.open("wb") as fh:
        pickle.dump({"weight": _Exploit(str(marker))}, fh)
    registry = get_model_registry()
    with pytest.raises(UnsafeArtifactError, match="refus"):
        registry.register_weights_file(evil, make_meta("v6.6.6"))
    assert not marker.exists()
    assert not registry.exists("wildlife_detector", "v6.6.6")
    assert ctx.audit.entries(action="model.register_refused")


def test_plain_state_dict_checkpoint_is_accepted(ctx, tmp_path):
    model = small_model(4)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    registry = get_model_registry()
    registry.register_weights_file(path, make_meta("v3.0.0"))
    loaded = registry.load_model("wildlife_detector", "v3.0.0")
    x = torch.randn(1, 22050)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))


def as_deployments(registry, version: str, status: ModelStatus, reason: str = "") -> None:
    with registry.db.write() as session:
        row = registry.require_row(session, "wildlife_detector", version)
        registry.set_status_in(session, row, status, reason)


def test_deployed_versions_cannot_be_deleted_and_history_answers_what_was_deployed(ctx):
    registry = get_model_registry()
    m1, m2 = make_meta("v1.0.0"), make_meta("v2.0.0")
    registry.register_model(small_model(1), m1)
    registry.register_model(small_model(2), m2)
    before_any = datetime.now(UTC)
    for version in ("v1.0.0", "v2.0.0"):
        registry.update_status("wildlife_detector", version, "validation")
    # DEPLOYED belongs to the deployments (a person cannot set it): set it as their store does.
    as_deployments(registry, "v1.0.0", ModelStatus.DEPLOYED, reason="launch")
    only_v1 = datetime.now(UTC)
    as_deployments(registry, "v2.0.0", ModelStatus.DEPLOYED)
    as_deployments(registry, "v1.0.0", ModelStatus.RETIRED, reason="replaced")

    assert registry.deployed_at("wildlife_detector", before_any) == []
    assert registry.deployed_at("wildlife_detector", only_v1) == ["v1.0.0"]
    assert registry.deployed_at("wildlife_detector", datetime.now(UTC)) == ["v2.0.0"]
    history = registry.status_history("wildlife_detector", "v1.0.0")
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, ModelStatus.TRAINING),
        (ModelStatus.TRAINING, ModelStatus.VALIDATION),
        (ModelStatus.VALIDATION, ModelStatus.DEPLOYED),
        (ModelStatus.DEPLOYED, ModelStatus.RETIRED),
    ]

    with pytest.raises(ConflictError, match="DEPLOYED"):
        registry.delete_model("wildlife_detector", "v2.0.0")
    registry.delete_model("wildlife_detector", "v1.0.0")
    assert not registry.exists("wildlife_detector", "v1.0.0")
    assert not ctx.artifacts.exists(m1.checksum)
    assert ctx.artifacts.exists(m2.checksum)
    assert ctx.audit.entries(action="model.delete")[0].before["version"] == "v1.0.0"


def test_tags_and_metrics_updates_are_audited(ctx):
    registry = get_model_registry()
    registry.register_model(small_model(), make_meta("v1.0.0", tags=["a"]))
    meta = registry.set_tags("wildlife_detector", "v1.0.0", add=["b", "c"], remove=["a"])
    assert meta.tags == ["b", "c"]
    assert [m.version for m in registry.list_models(tag="c")] == ["v1.0.0"]
    assert registry.list_models(tag="a") == []
    meta = registry.update_metrics("wildlife_detector", "v1.0.0", {"accuracy": 0.5})
    assert meta.metrics["accuracy"] == 0.5 and meta.metrics["f1_score"] == 0.9
    actions = [e.action for e in ctx.audit.entries()]
    assert actions[:2] == ["model.metrics", "model.tags"]
