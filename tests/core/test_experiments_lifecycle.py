"""Lifecycle (DRAFT -> RUNNING -> STOPPED | COMPLETED), history, audit, events, the seed's code."""

from __future__ import annotations

import pytest
from test_experiments_support import config_dict, register_models


def test_lifecycle_is_persisted_audited_and_announced(ctx) -> None:
    from core import ExperimentStatus, InvalidTransitionError, get_ab_test_manager
    from core.events import recent_events

    register_models()
    manager = get_ab_test_manager()
    info = manager.create_experiment(config_dict("life"))
    assert info.status is ExperimentStatus.DRAFT and info.created_by == "tester"
    assert info.started_at is None and info.allocation == {"control": 50.0, "treatment": 50.0}

    with pytest.raises(InvalidTransitionError, match="DRAFT; cannot move to STOPPED"):
        manager.stop_experiment("life", "never started")
    running = manager.start_experiment("life")
    assert running.status is ExperimentStatus.RUNNING and running.started_at is not None
    with pytest.raises(InvalidTransitionError):
        manager.start_experiment("life")

    stopped = manager.stop_experiment("life", "Sufficient data collected", actor="alice")
    assert stopped.status is ExperimentStatus.STOPPED
    assert stopped.stop_reason == "Sufficient data collected" and stopped.stopped_by == "alice"
    assert stopped.ended_at >= stopped.started_at
    with pytest.raises(InvalidTransitionError, match="allowed: none"):
        manager.start_experiment("life")

    status = manager.get_experiment_status("life")
    assert [h["to_status"] for h in status["status_history"]] == ["draft", "running", "stopped"]
    assert status["status_history"][-1]["actor"] == "alice"

    actions = [e.action for e in ctx.audit.entries(entity_type="experiment", entity_id="life")]
    assert actions == ["experiment.stopped", "experiment.running", "experiment.create"]
    kinds = [e.kind for e in recent_events(kind="experiment.")]
    assert kinds == ["experiment.stopped", "experiment.started"]


def test_list_and_filter(ctx) -> None:
    from core import ValidationError, get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("one"))
    manager.create_experiment(config_dict("two"))
    manager.start_experiment("two")
    assert {i.experiment_id for i in manager.list_experiments()} == {"one", "two"}
    assert [i.experiment_id for i in manager.list_experiments("running")] == ["two"]
    with pytest.raises(ValidationError, match="unknown experiment status"):
        manager.list_experiments("paused")


def test_allocation_history_records_every_change(ctx) -> None:
    from core import ConflictError, ValidationError, get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("alloc"))
    manager.start_experiment("alloc")
    change = manager.set_allocation("alloc", {"control": 33.333, "treatment": 66.667}, actor="bob")
    assert change.version == 2 and change.allocation == {"control": 33.33, "treatment": 66.67}
    history = manager.allocation_history("alloc")
    assert [(h.version, h.source) for h in history] == [(1, "initial"), (2, "manual")]
    assert history[1].actor == "bob" and history[1].at >= history[0].at
    assert manager.get_experiment("alloc").allocation_version == 2

    with pytest.raises(ValidationError, match="must sum to 100"):
        manager.set_allocation("alloc", {"control": 50.0, "treatment": 40.0})
    with pytest.raises(ValidationError, match="'other' is not a variant"):
        manager.set_allocation("alloc", {"control": 50.0, "treatment": 50.0, "other": 0.0})
    manager.stop_experiment("alloc", "done")
    with pytest.raises(ConflictError, match="allocation is frozen"):
        manager.set_allocation("alloc", {"control": 50.0, "treatment": 50.0})
    assert len(manager.allocation_history("alloc")) == 2


def test_seed_ab_examples_run_as_written(ctx, capsys) -> None:
    register_models(("v2.0.0", "v2.1.0"))
    # ---- the seed's A/B section, verbatim apart from the import's module name ----
    from core import ExperimentConfig, get_ab_test_manager

    # Get A/B test manager
    ab_manager = get_ab_test_manager()

    # Create experiment configuration
    config = ExperimentConfig(
        experiment_id="accuracy_improvement_test",
        name="Test v2.1 vs v2.0 Accuracy",
        description="Compare new model version against current production",
        model_variants={
            "control": "wildlife_detector:v2.0.0",
            "treatment": "wildlife_detector:v2.1.0",
        },
        traffic_allocation={
            "control": 70.0,  # 70% traffic
            "treatment": 30.0,  # 30% traffic
        },
        success_metrics=["accuracy", "confidence", "inference_time"],
        minimum_sample_size=1000,
        maximum_duration_days=14,
        confidence_level=0.95,
    )

    # Create and start experiment
    ab_manager.create_experiment(config)
    ab_manager.start_experiment("accuracy_improvement_test")

    # Get model for specific request (A/B testing handled automatically)
    model_version = ab_manager.get_model_for_request(
        request_id="user_123_request_456", experiment_id="accuracy_improvement_test"
    )

    # Model version will be either "wildlife_detector:v2.0.0" or "wildlife_detector:v2.1.0"
    # based on traffic allocation and consistent hashing
    assert model_version in ("wildlife_detector:v2.0.0", "wildlife_detector:v2.1.0")

    # Record result for a request
    ab_manager.record_result(
        experiment_id="accuracy_improvement_test",
        request_id="user_123_request_456",
        variant="treatment",
        metrics={"accuracy": 0.96, "confidence": 0.89, "inference_time": 0.234},
    )

    # Get experiment analysis
    analysis = ab_manager.analyze_experiment("accuracy_improvement_test")

    print(f"Experiment status: {analysis['experiment_metadata']['status']}")
    print(f"Duration: {analysis['duration_hours']:.1f} hours")

    for _comparison_key, comparison in analysis["comparisons"].items():
        for metric, result in comparison["metric_comparisons"].items():
            improvement = result["improvement_percent"]
            winner = result["winner"]
            print(f"{metric}: {winner} wins by {improvement:.2f}%")

    ab_manager.stop_experiment("accuracy_improvement_test", "Sufficient data collected")
    # ---- end of the seed's code ----
    printed = capsys.readouterr().out
    assert "Experiment status: running" in printed
    assert "accuracy: None wins by 0.00%" in printed  # one result: nothing to compare yet
    assert ab_manager.get_experiment("accuracy_improvement_test").status.value == "stopped"
