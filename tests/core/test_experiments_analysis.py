"""analyze_experiment: the seed's shape, values against core.stats and scipy on known data, Holm,
direction, several treatments, sample ratio mismatch across allocation epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as sps
from test_experiments_support import MODEL, config_dict, register_models

from core.stats import (
    BinaryStats,
    ContinuousStats,
    holm_adjust,
    sequential_test,
    two_proportion_z_test,
    welch_t_test,
)


def _record(manager, experiment_id: str, variant: str, prefix: str, columns: dict) -> None:
    n = len(next(iter(columns.values())))
    manager.record_results(
        [
            (experiment_id, f"{prefix}{i}", variant, {m: float(v[i]) for m, v in columns.items()})
            for i in range(n)
        ]
    )


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return {
        "control": {
            "accuracy": (rng.random(400) < 0.80).astype(float),
            "confidence": rng.normal(0.70, 0.10, 400),
            "inference_time": rng.normal(0.250, 0.03, 400),
        },
        "treatment": {
            "accuracy": (rng.random(300) < 0.90).astype(float),
            "confidence": rng.normal(0.70, 0.10, 300),
            "inference_time": rng.normal(0.200, 0.03, 300),
        },
    }


def test_analysis_shape_and_values_match_core_stats(ctx, data) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("an", minimum_sample_size=250))
    manager.start_experiment("an")
    for variant, columns in data.items():
        _record(manager, "an", variant, variant[0], columns)
    a = manager.analyze_experiment("an")
    json.dumps(a, allow_nan=False)  # plain JSON: no NaN or infinity anywhere

    assert a["experiment_metadata"]["status"] == "running"
    assert a["duration_hours"] >= 0
    assert set(a["comparisons"]) == {"treatment_vs_control"}
    comps = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]
    assert set(comps) == {"accuracy", "confidence", "inference_time"}

    acc = comps["accuracy"]
    ref = two_proportion_z_test(
        BinaryStats.from_values(data["control"]["accuracy"]),
        BinaryStats.from_values(data["treatment"]["accuracy"]),
    )
    assert acc["test"] == "two_proportion_z" and acc["metric_type"] == "binary"
    assert (acc["control_n"], acc["treatment_n"]) == (400, 300)
    assert acc["p_value"] == pytest.approx(ref.p_value, rel=1e-9)
    assert acc["difference_ci"] == pytest.approx(list(ref.difference_ci), rel=1e-9)
    assert acc["relative_lift_ci"] == pytest.approx(list(ref.relative_lift_ci), rel=1e-9)
    assert acc["improvement_percent"] == pytest.approx(ref.relative_lift * 100, rel=1e-9)

    latency = comps["inference_time"]
    c_t, t_t = data["control"]["inference_time"], data["treatment"]["inference_time"]
    ref = welch_t_test(ContinuousStats.from_values(c_t), ContinuousStats.from_values(t_t))
    scipy_p = sps.ttest_ind(t_t, c_t, equal_var=False).pvalue
    assert latency["test"] == "welch_t"
    assert latency["p_value"] == pytest.approx(scipy_p, rel=1e-6)
    assert latency["p_value"] == pytest.approx(ref.p_value, rel=1e-9)
    assert latency["control_mean"] == pytest.approx(c_t.mean(), rel=1e-9)
    assert latency["absolute_difference"] == pytest.approx(t_t.mean() - c_t.mean(), rel=1e-9)
    # Lower is better: faster treatment is a positive improvement and the winner.
    assert latency["higher_is_better"] is False
    assert latency["relative_lift"] < 0 and latency["improvement_percent"] > 0
    assert latency["winner"] == "treatment" and latency["significant"]
    assert acc["winner"] == "treatment"
    assert comps["confidence"]["winner"] is None

    family = [comps[m]["p_value"] for m in ("accuracy", "confidence", "inference_time")]
    adjusted = holm_adjust(family)
    for m, p in zip(("accuracy", "confidence", "inference_time"), adjusted, strict=True):
        assert comps[m]["p_value_adjusted"] == pytest.approx(p, rel=1e-12)

    seq = sequential_test(
        BinaryStats.from_values(data["control"]["accuracy"]),
        BinaryStats.from_values(data["treatment"]["accuracy"]),
        alpha=0.05,
        target_sample_size=500,
    )
    assert acc["sequential"]["always_valid_p"] == pytest.approx(seq.always_valid_p, rel=1e-9)
    assert acc["sequential"]["confidence_sequence"] == pytest.approx([seq.cs_low, seq.cs_high])
    assert a["sequential"]["metric"] == "accuracy"

    assert a["srm"]["observed"] == {"control": 400, "treatment": 300}
    assert a["srm"]["mismatch"] is True and a["trustworthy"] is False  # 400/300 vs 50/50
    assert a["recommendation"]["action"] == "invalid"
    power = a["power"]["treatment_vs_control"]
    assert power["available"] and 0 < power["achieved_power"] <= 1
    assert a["variants"]["treatment"]["metrics"]["accuracy"]["n"] == 300


def test_recommendations_follow_the_data(ctx) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    rng = np.random.default_rng(3)
    manager.create_experiment(config_dict("rec", minimum_sample_size=300))
    manager.start_experiment("rec")
    n = 200
    _record(manager, "rec", "control", "c", {"accuracy": rng.random(n) < 0.7})
    _record(manager, "rec", "treatment", "t", {"accuracy": rng.random(n) < 0.7})
    rec = manager.analyze_experiment("rec")["recommendation"]
    assert rec["action"] == "keep_running" and "collecting data" in rec["reason"]

    _record(manager, "rec", "control", "c2", {"accuracy": rng.random(400) < 0.70})
    _record(manager, "rec", "treatment", "t2", {"accuracy": rng.random(400) < 0.95})
    a = manager.analyze_experiment("rec")
    assert a["srm"]["mismatch"] is False and a["trustworthy"] is True
    assert a["recommendation"]["action"] == "stop_winner"
    assert a["recommendation"]["winner"] == "treatment"


def test_three_variants_compare_each_treatment_with_the_named_control(ctx) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    cfg = config_dict(
        "multi",
        model_variants={
            "new": f"{MODEL}:v2.1.0",
            "prod": f"{MODEL}:v2.0.0",
            "newer": f"{MODEL}:v2.2.0",
        },
        traffic_allocation={"new": 30.0, "prod": 40.0, "newer": 30.0},
        control_variant="prod",
        success_metrics=["confidence", "inference_time"],
    )
    manager.create_experiment(cfg)
    manager.start_experiment("multi")
    rng = np.random.default_rng(11)
    # A full standard deviation: the winner comes from the always-valid test, which needs more
    # evidence than one fixed-horizon look.
    for variant, shift in (("prod", 0.0), ("new", 0.0), ("newer", 0.1)):
        n = 120
        _record(
            manager,
            "multi",
            variant,
            variant,
            {
                "confidence": rng.normal(0.6 + shift, 0.1, n),
                "inference_time": rng.normal(1, 0.1, n),
            },
        )
    a = manager.analyze_experiment("multi")
    assert set(a["comparisons"]) == {"new_vs_prod", "newer_vs_prod"}
    assert a["experiment_metadata"]["control_variant"] == "prod"
    # Holm runs over all four (treatment, metric) p-values together.
    flat = [
        (k, m, c["p_value"])
        for k, comp in a["comparisons"].items()
        for m, c in comp["metric_comparisons"].items()
    ]
    for (k, m, _p), adj in zip(flat, holm_adjust([p for *_x, p in flat]), strict=True):
        assert a["comparisons"][k]["metric_comparisons"][m]["p_value_adjusted"] == pytest.approx(
            adj
        )
    assert (
        a["comparisons"]["newer_vs_prod"]["metric_comparisons"]["confidence"]["winner"] == "newer"
    )


def test_empty_experiment_analysis_is_well_formed(ctx) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("empty"))
    a = manager.analyze_experiment("empty")
    json.dumps(a, allow_nan=False)
    assert a["duration_hours"] == 0.0 and a["experiment_metadata"]["status"] == "draft"
    c = a["comparisons"]["treatment_vs_control"]["metric_comparisons"]["accuracy"]
    assert c["improvement_percent"] == 0.0 and c["winner"] is None and c["p_value"] == 1.0
    assert a["srm"]["mismatch"] is False and a["recommendation"]["action"] == "keep_running"


def test_srm_uses_the_allocation_in_force_when_units_arrived(ctx) -> None:
    """1000 units at 50/50 then 1000 at 90/10: 1400/600 is right, not a mismatch; but a
    check against the current split alone (90/10) would flag it."""
    from core import get_ab_test_manager
    from core.stats import sample_ratio_mismatch

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("epochs", success_metrics=["confidence"]))
    manager.start_experiment("epochs")
    _record(manager, "epochs", "control", "a", {"confidence": np.full(500, 0.5)})
    _record(manager, "epochs", "treatment", "b", {"confidence": np.full(500, 0.5)})
    manager.set_allocation("epochs", {"control": 90.0, "treatment": 10.0})
    _record(manager, "epochs", "control", "c", {"confidence": np.full(900, 0.5)})
    _record(manager, "epochs", "treatment", "d", {"confidence": np.full(100, 0.5)})
    srm = manager.analyze_experiment("epochs")["srm"]
    assert srm["observed"] == {"control": 1400, "treatment": 600}
    assert srm["expected"] == {"control": 1400.0, "treatment": 600.0}
    assert srm["mismatch"] is False
    naive = sample_ratio_mismatch(
        {"control": 1400, "treatment": 600}, {"control": 90, "treatment": 10}
    )
    assert naive.mismatch

    # A real mismatch: the treatment now logs only a tenth of its units.
    _record(manager, "epochs", "control", "e", {"confidence": np.full(1800, 0.5)})
    _record(manager, "epochs", "treatment", "f", {"confidence": np.full(20, 0.5)})
    a = manager.analyze_experiment("epochs")
    assert a["srm"]["mismatch"] is True and a["srm"]["p_value"] < 0.001
    assert a["trustworthy"] is False and a["recommendation"]["action"] == "invalid"
