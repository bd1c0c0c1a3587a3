"""Analysis that stays valid when the allocation changes: the three examples of issue 12
(drift with a reallocation, the Normal example at the MDE, 5/100 vs 1/100), estimation within
allocation epochs through the real store, and arms that no epoch lets us compare."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from test_experiments_support import config_dict, register_models

from core.experiments.analysis import build_analysis
from core.experiments.config import ExperimentConfig
from core.experiments.models import AllocationChange, ExperimentInfo, ExperimentStatus
from core.stats import BinaryStats, ContinuousStats, two_proportion_z_test

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _info(cfg: ExperimentConfig, allocation: dict[str, float], version: int) -> ExperimentInfo:
    return ExperimentInfo(
        experiment_id=cfg.experiment_id,
        name=cfg.name,
        description="",
        status=ExperimentStatus.RUNNING,
        config=cfg,
        allocation=allocation,
        allocation_version=version,
        created_at=NOW - timedelta(days=2),
        created_by="test",
        started_at=NOW - timedelta(days=2),
        ended_at=None,
        stop_reason="",
        stopped_by="",
    )


def _change(version: int, allocation: dict[str, float]) -> AllocationChange:
    return AllocationChange("x", version, allocation, "manual", NOW, "test", "")


def _analyze(cfg, epochs: list[tuple[dict[str, float], dict[str, tuple[int, float, float]]]]):
    """``epochs``: (allocation, {variant: (n, sum, sum_sq)}) of the primary metric."""
    stats, units = {}, {}
    for version, (_alloc, arms) in enumerate(epochs, start=1):
        for variant, triple in arms.items():
            stats[(variant, cfg.primary, version)] = triple
            units[(variant, version)] = triple[0]
    history = [_change(v, a) for v, (a, _arms) in enumerate(epochs, start=1)]
    info = _info(cfg, epochs[-1][0], len(epochs))
    return build_analysis(info, stats, units, history, NOW)


def _binary(n: int, successes: int) -> tuple[int, float, float]:
    return n, float(successes), float(successes)


def _normal(n: int, mean: float, sd: float) -> tuple[int, float, float]:
    s = ContinuousStats.from_moments(n, mean, sd * sd)
    return s.n, s.sum, s.sum_sq


def test_drift_with_reallocation_is_no_winner() -> None:
    """The issue's example: the base rate moves from 10 % to 12 % while the split moves from
    50/50 to 10/90; within each epoch the arms are identical. Pooled, that is a 9.2 % lift at
    p < 1e-4; within epochs it is exactly nothing."""
    cfg = ExperimentConfig(**config_dict("x", success_metrics=["accuracy"])).normalized()
    half = {"control": 50.0, "treatment": 50.0}
    skewed = {"control": 10.0, "treatment": 90.0}
    epochs = [
        (half, {"control": _binary(20_000, 2_000), "treatment": _binary(20_000, 2_000)}),
        (skewed, {"control": _binary(4_000, 480), "treatment": _binary(36_000, 4_320)}),
    ]
    pooled = two_proportion_z_test(BinaryStats(24_000, 2_480), BinaryStats(56_000, 6_320))
    assert pooled.relative_lift == pytest.approx(0.0922, abs=1e-4) and pooled.p_value < 1e-4

    a = _analyze(cfg, epochs)
    json.dumps(a, allow_nan=False)
    acc = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["accuracy"]
    assert acc["absolute_difference"] == pytest.approx(0.0, abs=1e-12)
    assert acc["relative_lift"] == pytest.approx(0.0, abs=1e-12)
    assert acc["winner"] is None and acc["significant"] is False
    assert acc["sequential"]["always_valid_p"] == 1.0
    assert acc["epochs"]["used"] == 2 and acc["test"] == "stratified_z"
    assert a["recommendation"]["action"] != "stop_winner"
    assert a["trustworthy"] is True and a["validity"]["allocation_epochs_with_data"] == 2
    # The raw means per variant still differ, and the validity block says not to compare them.
    raw = a["variants"]
    assert (
        raw["treatment"]["metrics"]["accuracy"]["mean"]
        > raw["control"]["metrics"]["accuracy"]["mean"]
    )
    assert any("variants" in k for k in a["validity"]["not_valid_under_reallocation"])


def test_normal_example_at_the_mde_is_not_no_difference() -> None:
    """1,600 per arm, means 1.00 vs 1.08, sd 1, MDE 10 %: the fixed-horizon test would say
    p = 0.024 and the old power rule "no difference"; now every verdict comes from one
    always-valid inference, and a true +8 % is not ruled out."""
    cfg = ExperimentConfig(
        **config_dict(
            "x",
            success_metrics=["confidence"],
            minimum_detectable_effect=0.10,
            minimum_sample_size=1000,
        )
    ).normalized()
    a = _analyze(
        cfg,
        [
            (
                {"control": 50.0, "treatment": 50.0},
                {"control": _normal(1600, 1.00, 1.0), "treatment": _normal(1600, 1.08, 1.0)},
            )
        ],
    )
    c = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["confidence"]
    assert c["p_value"] == pytest.approx(0.024, abs=1e-3)  # fixed horizon: shown, not decisive
    assert a["recommendation"]["action"] == "keep_running"
    seq = c["sequential"]
    assert c["significant"] is (seq["always_valid_p_adjusted"] <= 0.05) is False
    assert c["winner"] is None and seq["conclusive"] is False and c["within_mde"] is False
    low, high = seq["relative_confidence_sequence"]
    assert low < 0.0 < 0.08 < 0.10 < high  # neither "no change" nor "+10 %" is excluded


def test_no_difference_only_when_the_sequence_lies_within_the_mde() -> None:
    cfg = ExperimentConfig(
        **config_dict("x", success_metrics=["confidence"], minimum_detectable_effect=0.10)
    ).normalized()
    a = _analyze(
        cfg,
        [
            (
                {"control": 50.0, "treatment": 50.0},
                {"control": _normal(20_000, 1.00, 1.0), "treatment": _normal(20_000, 1.005, 1.0)},
            )
        ],
    )
    c = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["confidence"]
    low, high = c["sequential"]["relative_confidence_sequence"]
    assert -0.10 < low < 0.0 < high < 0.10 and c["within_mde"] is True
    assert a["recommendation"]["action"] == "stop_no_difference"
    assert "+-10%" in a["recommendation"]["reason"]


def test_five_in_a_hundred_vs_one_relative_agrees_with_absolute() -> None:
    cfg = ExperimentConfig(
        **config_dict("x", success_metrics=["accuracy"], minimum_sample_size=100)
    ).normalized()
    a = _analyze(
        cfg,
        [
            (
                {"control": 50.0, "treatment": 50.0},
                {"control": _binary(100, 5), "treatment": _binary(100, 1)},
            )
        ],
    )
    c = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["accuracy"]
    abs_low, abs_high = c["sequential"]["confidence_sequence"]
    rel_low, rel_high = c["sequential"]["relative_confidence_sequence"]
    assert abs_low < 0.0 < abs_high
    assert rel_low == -1.0 and rel_high is None  # contains 0; never below -100 %
    lo, hi = c["difference_ci"]
    rlo, rhi = c["relative_lift_ci"]
    assert lo < 0.0 < hi and -1.0 <= rlo < 0.0 < rhi
    assert c["significant"] is False and c["winner"] is None


def _record(manager, experiment_id: str, variant: str, prefix: str, values) -> None:
    manager.record_results(
        [
            (experiment_id, f"{prefix}{i}", variant, {"accuracy": float(v)})
            for i, v in enumerate(values)
        ]
    )


def _outcomes(n: int, successes: int) -> np.ndarray:
    return np.r_[np.ones(successes), np.zeros(n - successes)]


def test_epochs_come_from_the_store_and_results_stay_with_their_unit(ctx) -> None:
    """Through the real store: the epoch of a result is its unit's allocation version, also
    for a late result of an old unit recorded after the reallocation."""
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    cfg = config_dict("drift", success_metrics=["accuracy", "confidence"])
    manager.create_experiment(cfg)
    manager.start_experiment("drift")
    _record(manager, "drift", "control", "a", _outcomes(1000, 100))
    _record(manager, "drift", "treatment", "b", _outcomes(1000, 100))
    manager.set_allocation("drift", {"control": 10.0, "treatment": 90.0})
    # A late value of another metric for a unit of the first epoch stays in that epoch.
    manager.record_results([("drift", "a0", "control", {"confidence": 0.5})])
    _record(manager, "drift", "control", "c", _outcomes(200, 24))
    _record(manager, "drift", "treatment", "d", _outcomes(1800, 216))
    stats = manager.store.epoch_metric_stats("drift")
    assert stats[("control", "accuracy", 1)] == (1000, 100.0, 100.0)
    assert stats[("control", "confidence", 1)] == (1, 0.5, 0.25)
    assert stats[("treatment", "accuracy", 2)] == (1800, 216.0, 216.0)
    a = manager.analyze_experiment("drift")
    acc = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["accuracy"]
    assert acc["relative_lift"] == pytest.approx(0.0, abs=1e-12)
    assert acc["control_mean"] == pytest.approx(acc["treatment_mean"], abs=1e-12)
    assert a["variants"]["treatment"]["metrics"]["accuracy"]["mean"] == pytest.approx(316 / 2800)
    assert a["trustworthy"] is True and a["validity"]["allocation_changes"] == 1


def test_arms_that_no_epoch_compares_are_not_trustworthy(ctx) -> None:
    """Everything to the control, then everything to the treatment: the only contrast is
    across time, so there is no valid estimate and the analysis says so."""
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(
        config_dict(
            "split",
            success_metrics=["accuracy"],
            traffic_allocation={"control": 100.0, "treatment": 0.0},
        )
    )
    manager.start_experiment("split")
    _record(manager, "split", "control", "a", _outcomes(500, 50))
    manager.set_allocation("split", {"control": 0.0, "treatment": 100.0})
    _record(manager, "split", "treatment", "b", _outcomes(500, 150))
    a = manager.analyze_experiment("split")
    acc = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["accuracy"]
    assert a["srm"]["mismatch"] is False
    assert a["trustworthy"] is False and "no allocation epoch" in a["trust_notes"][0]
    assert a["recommendation"]["action"] == "invalid"
    assert acc["valid"] is False and acc["winner"] is None and acc["significant"] is False
    assert "no allocation epoch" in acc["note"]
    assert manager.check_experiments() == []  # the monitor does not stop on it either


def test_migration_backfills_epoch_statistics_from_raw_results(tmp_path) -> None:
    """A database just before the per-epoch table, with results recorded in two epochs:
    upgrading to head fills the table from the raw rows and each unit's allocation version."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from data.database import Database
    from data.migrate import MIGRATIONS_DIR

    # Read the revision before this migration from the file, so a renumbering cannot break it.
    path = next((MIGRATIONS_DIR / "versions").glob("*_experiment_epoch_stats.py"))
    spec = importlib.util.spec_from_file_location("epoch_stats_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, module.down_revision)
        at = "2026-01-01 00:00:00.000000"
        conn.execute(
            text(
                "INSERT INTO experiment (experiment_id, name, description, config, status,"
                " allocation_version, created_at, created_by, stop_reason, stopped_by, updated_at)"
                " VALUES ('old', '', '', '{}', 'running', 2, :at, '', '', '', :at)"
            ),
            {"at": at},
        )
        units = [("u1", "control", 1), ("u2", "control", 2), ("u3", "treatment", 1)]
        for req, variant, version in units:
            conn.execute(
                text("INSERT INTO experiment_unit VALUES ('old', :req, :variant, :version, :at)"),
                {"req": req, "variant": variant, "version": version, "at": at},
            )
        values = [
            ("u1", "accuracy", 1.0),
            ("u1", "confidence", 0.5),
            ("u2", "accuracy", 0.0),
            ("u3", "accuracy", 1.0),
        ]
        for req, metric, value in values:
            variant = "treatment" if req == "u3" else "control"
            conn.execute(
                text(
                    "INSERT INTO experiment_result (experiment_id, request_id, metric, variant,"
                    " value, recorded_at) VALUES ('old', :req, :metric, :variant, :value, :at)"
                ),
                {"req": req, "metric": metric, "variant": variant, "value": value, "at": at},
            )
        command.upgrade(cfg, "head")
        rows = conn.execute(
            text(
                "SELECT variant, metric, allocation_version, n, sum, sum_sq"
                " FROM experiment_epoch_metric_stats ORDER BY 1, 2, 3"
            )
        ).all()
        conn.commit()
    db.dispose()
    assert [tuple(r) for r in rows] == [
        ("control", "accuracy", 1, 1, 1.0, 1.0),
        ("control", "accuracy", 2, 1, 0.0, 0.0),
        ("control", "confidence", 1, 1, 0.5, 0.25),
        ("treatment", "accuracy", 1, 1, 1.0, 1.0),
    ]


def test_validity_block_names_adaptive_allocation() -> None:
    cfg = ExperimentConfig(
        **config_dict("x", success_metrics=["accuracy"], allocation_mode="thompson_sampling")
    ).normalized()
    a = _analyze(
        cfg,
        [
            (
                {"control": 50.0, "treatment": 50.0},
                {"control": _binary(500, 50), "treatment": _binary(500, 60)},
            ),
            (
                {"control": 20.0, "treatment": 80.0},
                {"control": _binary(200, 22), "treatment": _binary(800, 100)},
            ),
        ],
    )
    v = a["validity"]
    assert v["adaptive_allocation"] is True and v["allocation_changes"] == 1
    assert "inverse-variance" in v["estimator"]
    assert any("always_valid_p" in k for k in v["valid_under_reallocation"])
    assert any("p_value" in k for k in v["not_valid_under_reallocation"])
    c = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["accuracy"]
    # The comparison's means are the epoch-weighted ones its difference is taken between.
    assert c["treatment_mean"] - c["control_mean"] == pytest.approx(c["absolute_difference"])
    assert c["epochs"] == {
        "total": 2,
        "used": 2,
        "skipped": 0,
        "units_skipped": 0,
        "estimator": c["epochs"]["estimator"],
    }
