"""Experiment metrics that are not per-request outcomes: ``macro_f1`` and ``f1.CLASS``.

``recall.CLASS`` and ``precision.CLASS`` are 0/1 per labelled request, so they ride the ordinary
result machinery (mSPRT, epochs, auto-stop). F1 is a ratio of counts over a whole arm, so it is
computed at analysis time from the arms' labelled confusion counts (summed in SQL by the
quality rollup, split by variant) with the quality report's intervals
(``core.quality.metrics.f1_comparison``: each arm's value and bootstrap interval as in
``nightscan quality``, the difference and lift from independent bootstraps). Those intervals are
fixed-horizon, so an F1 metric is shown and never decides: it cannot be the primary or the
reward metric, it is never "significant" and names no winner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.quality.names import MACRO_F1, parse_quality_metric

Confusion = Mapping[tuple[str, str], int]
TEST = "bootstrap of labelled confusion counts (fixed-horizon; shown, never decisive)"


def is_count_metric(name: str) -> bool:
    """Whether ``name`` is computed from an arm's confusion counts, not recorded per request."""
    q = parse_quality_metric(name)
    return q is not None and q.kind in ("f1", MACRO_F1)


def _matrix(labels: Sequence[str], counts: Confusion) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for (true, pred), n in counts.items():
        m[index[true]][index[pred]] += int(n)
    return m


def _pair(ci) -> list[float] | None:
    return None if ci is None else [ci.low, ci.high]


def count_metric_comparison(
    metric: str,
    labels: Sequence[str],
    control: Confusion,
    treatment: Confusion,
    *,
    primary: bool,
    confidence: float,
) -> dict[str, Any]:
    """The comparison block of ``analyze_experiment`` for an F1 metric (same keys as the
    per-request metrics where they apply)."""
    from core.quality.metrics import f1_comparison

    q = parse_quality_metric(metric)
    assert q is not None
    names = list(labels)
    for counts in (control, treatment):
        for pair in counts:
            names += [x for x in pair if x not in names]
    c = f1_comparison(names, _matrix(names, control), _matrix(names, treatment),
                      label=q.label, confidence=confidence)  # fmt: skip
    note = None
    if q.label is not None and q.label not in labels:
        note = f"class {q.label!r} is not one of the variants' classes"
    elif c.difference is None:
        note = "needs labelled feedback in both variants"
    lift = c.relative_lift
    return {
        "metric_type": "f1",
        "higher_is_better": True,
        "primary": primary,
        "control_mean": c.control,
        "treatment_mean": c.treatment,
        "control_ci": _pair(c.control_ci),
        "treatment_ci": _pair(c.treatment_ci),
        "control_n": c.control_n,
        "treatment_n": c.treatment_n,
        "absolute_difference": c.difference,
        "difference_ci": _pair(c.difference_ci),
        "relative_lift": lift,
        "relative_lift_ci": _pair(c.relative_lift_ci),
        "improvement_percent": 0.0 if lift is None else lift * 100.0,
        "test": TEST,
        "statistic": None,
        "p_value": None,
        "p_value_adjusted": None,
        "confidence_level": confidence,
        "sequential": None,
        "significant": False,
        "winner": None,
        "within_mde": False,
        "valid": c.difference is not None,
        "note": note,
    }
