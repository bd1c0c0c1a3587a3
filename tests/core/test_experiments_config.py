"""Experiment configuration: one message per fault, file loading, defaults, registry checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_experiments_support import MODEL, config_dict, register_models

from core.experiments.config import (
    ConfigValidationError,
    ExperimentConfig,
    MetricKind,
)


def problems(**overrides) -> list[str]:
    return ExperimentConfig(**config_dict(**overrides)).problems()


def test_a_valid_config_has_no_problems() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"traffic_allocation": {"control": 60.0, "treatment": 30.0}}, "must sum to 100, got 90"),
        ({"traffic_allocation": {"control": 100.0}}, "no share for variant 'treatment'"),
        (
            {"traffic_allocation": {"control": 50.0, "treatment": 25.0, "other": 25.0}},
            "'other', which is not in model_variants",
        ),
        ({"traffic_allocation": {"control": "50", "treatment": 50.0}}, "number in [0, 100]"),
        (
            {
                "model_variants": {"control": f"{MODEL}:v2.0.0"},
                "traffic_allocation": {"control": 100},
            },
            "at least two variants, got 1",
        ),
        ({"confidence_level": 1.0}, "confidence_level must be in (0, 1)"),
        ({"confidence_level": 0}, "confidence_level must be in (0, 1)"),
        ({"experiment_id": "bad id!"}, "experiment_id 'bad id!'"),
        ({"success_metrics": []}, "at least one metric"),
        ({"success_metrics": ["accuracy", "accuracy"]}, "'accuracy' more than once"),
        ({"primary_metric": "f1"}, "primary_metric 'f1' is not in success_metrics"),
        ({"minimum_sample_size": 0}, "minimum_sample_size must be a whole number >= 1"),
        ({"maximum_duration_days": -1}, "maximum_duration_days must be > 0"),
        ({"allocation_mode": "ucb"}, "allocation_mode 'ucb' must be one of"),
        ({"exploration_rate": 2}, "exploration_rate must be in [0, 1]"),
        ({"control_variant": "nope"}, "control_variant 'nope' is not in model_variants"),
        ({"metrics": {"accuracy": {"kind": "ordinal"}}}, "metrics.accuracy.kind must be"),
        ({"metrics": {"f1": {"kind": "binary"}}}, "metrics.f1 describes a metric that is not"),
        (
            {"model_variants": {"control": "no-version", "treatment": f"{MODEL}:v2.1.0"}},
            "must be written MODEL_ID:VERSION",
        ),
        (
            {"bandit_config": {"algorithm": "thompson_sampling", "budget": 3}},
            "unknown key 'budget'",
        ),
    ],
)
def test_each_fault_has_one_clear_message(overrides: dict, expected: str) -> None:
    found = problems(**overrides)
    assert len(found) == 1, found
    assert expected in found[0]


def test_all_faults_are_reported_at_once() -> None:
    cfg = ExperimentConfig(
        **config_dict(
            "x y", traffic_allocation={"control": 10.0, "treatment": 10.0}, confidence_level=2
        )
    )
    with pytest.raises(ConfigValidationError) as info:
        cfg.validate()
    assert len(info.value.problems) == 3
    assert "must sum to 100" in str(info.value) and "confidence_level" in str(info.value)


def test_defaults_and_metric_kinds() -> None:
    cfg = ExperimentConfig(**config_dict()).normalized()
    assert cfg.control == "control" and cfg.treatments == ["treatment"]
    assert cfg.primary == "accuracy" and cfg.reward == "accuracy"
    specs = cfg.metric_specs()
    assert specs["accuracy"].kind is MetricKind.BINARY and specs["accuracy"].higher_is_better
    assert specs["confidence"].kind is MetricKind.CONTINUOUS
    assert specs["inference_time"].kind is MetricKind.CONTINUOUS
    assert not specs["inference_time"].higher_is_better  # lower latency is better
    overridden = ExperimentConfig(
        **config_dict(
            metrics={"confidence": {"kind": "binary"}, "accuracy": {"direction": "lower"}},
            control_variant="treatment",
        )
    )
    assert overridden.metric_spec("confidence").kind is MetricKind.BINARY
    assert not overridden.metric_spec("accuracy").higher_is_better
    assert overridden.control == "treatment" and overridden.treatments == ["control"]


def test_seed_bandit_config_maps_to_the_flat_fields() -> None:
    cfg = ExperimentConfig(
        **config_dict(
            success_metrics=["user_satisfaction", "accuracy"],
            bandit_config={
                "algorithm": "thompson_sampling",
                "exploration_rate": 0.1,
                "reward_metric": "user_satisfaction",
                "update_frequency": 3600,
            },
        )
    )
    assert cfg.problems() == []
    assert cfg.is_bandit and cfg.reward == "user_satisfaction" and cfg.update_frequency == 3600


def test_round_trip_through_dict() -> None:
    cfg = ExperimentConfig(**config_dict()).normalized()
    again = ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_from_file_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "exp.toml"
    toml.write_text(
        'experiment_id = "from_toml"\n'
        'success_metrics = ["accuracy", "inference_time"]\n'
        "minimum_sample_size = 500\n"
        "[model_variants]\n"
        f'control = "{MODEL}:v2.0.0"\n'
        f'treatment = "{MODEL}:v2.1.0"\n'
        "[traffic_allocation]\ncontrol = 70.0\ntreatment = 30.0\n"
        '[bandit]\nalgorithm = "epsilon_greedy"\nexploration_rate = 0.2\n'
    )
    cfg = ExperimentConfig.from_file(toml)
    assert cfg.experiment_id == "from_toml" and cfg.minimum_sample_size == 500
    assert cfg.allocation_mode == "epsilon_greedy" and cfg.exploration_rate == 0.2
    assert cfg.problems() == []

    js = tmp_path / "exp.json"
    js.write_text(json.dumps(config_dict("from_json")))
    assert ExperimentConfig.from_file(js).experiment_id == "from_json"


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    from core import ValidationError

    with pytest.raises(ValidationError, match="cannot read experiment config"):
        ExperimentConfig.from_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValidationError, match="cannot parse experiment config"):
        ExperimentConfig.from_file(broken)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({**config_dict(), "trafic": 1}))
    with pytest.raises(ValidationError, match="unknown field 'trafic'"):
        ExperimentConfig.from_file(unknown)


def test_models_must_exist_and_be_usable(ctx) -> None:
    from core import ConflictError, get_ab_test_manager, get_model_registry

    register_models(("v2.0.0", "v2.1.0"))
    manager = get_ab_test_manager()
    cfg = config_dict(
        "models",
        model_variants={"control": f"{MODEL}:v2.0.0", "treatment": f"{MODEL}:v9.9.9"},
    )
    with pytest.raises(ConfigValidationError) as info:
        manager.create_experiment(cfg)
    assert info.value.problems == [f"variant 'treatment': model {MODEL}:v9.9.9 is not registered"]

    get_model_registry().update_status(MODEL, "v2.1.0", "failed", "broken")
    with pytest.raises(ConfigValidationError, match="v2.1.0 is FAILED"):
        manager.create_experiment(config_dict("models"))
    get_model_registry().update_status(MODEL, "v2.1.0", "retired")
    with pytest.raises(ConfigValidationError, match="v2.1.0 is RETIRED"):
        manager.create_experiment(config_dict("models"))

    get_model_registry().update_status(MODEL, "v2.1.0", "testing")
    manager.create_experiment(config_dict("models"))
    with pytest.raises(ConflictError, match="already exists"):
        manager.create_experiment(config_dict("models"))
    # A model retired after creation blocks the start.
    get_model_registry().update_status(MODEL, "v2.1.0", "retired")
    with pytest.raises(ConflictError, match="cannot start models"):
        manager.start_experiment("models")
