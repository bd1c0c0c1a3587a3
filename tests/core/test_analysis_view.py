"""AnalysisView: the typed reading of analyze_experiment's dict, on real analyses (an empty
experiment, a running one with data, the same one after it ended)."""

from __future__ import annotations

import json

import numpy as np
from test_experiments_support import config_dict, register_models

from core.experiments.analysis_view import AnalysisView


def _record(manager, experiment_id: str, n: int, rate: dict[str, float]) -> None:
    rng = np.random.default_rng(3)
    manager.record_results(
        [
            (experiment_id, f"{v}-{i}", v, {"accuracy": float(rng.random() < rate[v])})
            for v in ("control", "treatment")
            for i in range(n)
        ]
    )


def test_the_view_reads_every_field_and_tells_the_states_apart(ctx) -> None:
    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("av", minimum_sample_size=5000))
    manager.start_experiment("av")

    empty = AnalysisView.from_dict(manager.analyze_experiment("av"))
    assert not empty.has_data and empty.total_units == 0 and not empty.ended
    assert empty.srm_line == "sample ratio: no data yet"
    assert [empty.power_line(p) for p in empty.power] == ["treatment vs control: no data yet"]
    assert all(not m.has_data for c in empty.comparisons for m in c.metrics)

    _record(manager, "av", 300, {"control": 0.8, "treatment": 0.82})
    found = manager.analyze_experiment("av")
    view = AnalysisView.from_dict(json.loads(json.dumps(found)))  # as it arrives over HTTP
    assert view == AnalysisView.from_dict(found)
    assert view.experiment_id == "av" and view.status == "running" and view.has_data
    assert view.primary_metric == found["experiment_metadata"]["primary_metric"]
    assert [(v.name, v.units) for v in view.variants] == [("control", 300), ("treatment", 300)]
    comparison = view.comparisons[0]
    assert (comparison.key, comparison.title) == ("treatment_vs_control", "treatment vs control")
    raw = found["comparisons"]["treatment_vs_control"]["metric_comparisons"]
    assert [m.metric for m in comparison.metrics] == list(raw)
    assert [m.has_data for m in comparison.metrics] == [True, False, False]  # accuracy only
    for m in comparison.metrics:
        r = raw[m.metric]
        assert (m.control_n, m.treatment_n) == (r["control_n"], r["treatment_n"])
        assert m.relative_lift == r["relative_lift"] and m.p_value == r["p_value"]
        assert m.always_valid_p == r["sequential"]["always_valid_p_adjusted"]
        assert m.improvement_percent == r["improvement_percent"]
    assert view.srm.verdict == found["srm"]["verdict"] == view.srm_line
    (power,) = view.power
    assert (
        power.available
        and power.remaining_total
        == found["power"]["treatment_vs_control"]["remaining"]["total"]
        > 0
    )
    assert "more units needed" in view.power_line(power)
    assert view.recommendation.action == found["recommendation"]["action"]

    manager.stop_experiment("av", "enough")
    ended = AnalysisView.from_dict(manager.analyze_experiment("av"))
    assert ended.ended and ended.status == "stopped"
    line = ended.power_line(ended.power[0])
    assert "more units" not in line and line.endswith("(ended)")


def test_improvement_is_signed_by_direction_as_the_registry_compare_is(ctx) -> None:
    """A faster treatment: the latency's lift is negative, its improvement positive, and the
    registry's comparison of the same two numbers says the same (+ means better)."""
    from core import get_ab_test_manager
    from core.comparison import percentage_improvement

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("fast"))
    manager.start_experiment("fast")
    rng = np.random.default_rng(5)
    manager.record_results(
        [
            (
                "fast",
                f"{v}-{i}",
                v,
                {"accuracy": 1.0, "confidence": 0.7, "inference_time": rng.normal(mean, 0.01)},
            )
            for v, mean in (("control", 0.25), ("treatment", 0.20))
            for i in range(200)
        ]
    )
    view = AnalysisView.from_dict(manager.analyze_experiment("fast"))
    latency = next(m for m in view.comparisons[0].metrics if m.metric == "inference_time")
    assert not latency.higher_is_better and latency.significant
    assert latency.relative_lift is not None and latency.relative_lift < -0.1
    assert latency.improvement == -latency.relative_lift
    low, high = latency.improvement_ci
    assert 0 < low < latency.improvement < high
    assert (low, high) == (-latency.relative_lift_ci[1], -latency.relative_lift_ci[0])
    registry = percentage_improvement(latency.control_mean, latency.treatment_mean, False)
    assert registry is not None and registry > 0
    assert abs(registry / 100 - latency.improvement) < 1e-9
    assert latency.improvement_percent > 0  # the analysis dict's own field agrees
