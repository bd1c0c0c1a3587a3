"""``analyze_experiment``'s result, built from sufficient statistics only (constant time in the
number of results).

Shape (the seed's keys first)::

    experiment_metadata: {experiment_id, name, status, started_at, ..., control_variant}
    duration_hours: float
    comparisons: {"<treatment>_vs_<control>": {control, treatment, metric_comparisons: {
        metric: {improvement_percent, winner, control_mean, treatment_mean, control_n,
                 treatment_n, absolute_difference, difference_ci, relative_lift,
                 relative_lift_ci, p_value, p_value_adjusted, significant, test, sequential,
                 power, ...}}}}
    variants, srm, power, sequential, recommendation, trustworthy

Conventions: effects are treatment minus control. ``improvement_percent`` is the relative lift
in percent, sign-flipped for lower-is-better metrics, so positive always means "treatment is
better" (0.0 when the lift is undefined: empty group or control mean 0; see ``note``).
``significant`` uses the fixed-horizon p-value Holm-adjusted across every metric and treatment;
``winner`` is the better variant when significant, else None. Fixed-horizon p-values are valid
only at a sample size fixed in advance; the ``sequential`` block (always-valid p and confidence
sequence) is the one to watch continuously, and it is what the recommendation and auto-stop use.
Infinite interval ends (too little data) are reported as None so the result is plain JSON.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.experiments.config import ExperimentConfig, MetricKind
from core.experiments.models import AllocationChange, ExperimentInfo
from core.experiments.stopping import (
    auto_stop_decision,
    metric_arms,
    sequential_results,
    sequential_target,
)
from core.stats import (
    MetricStats,
    achieved_power_binary,
    achieved_power_continuous,
    holm_adjust,
    remaining_sample_size,
    required_sample_size_binary,
    required_sample_size_continuous,
    sample_ratio_mismatch,
    two_proportion_z_test,
    welch_t_test,
)

SRM_THRESHOLD = 0.001
TARGET_POWER = 0.8

Stats = Mapping[tuple[str, str], tuple[int, float, float]]


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _interval(ci: tuple[float, float] | None) -> list[float | None] | None:
    return None if ci is None else [_num(ci[0]), _num(ci[1])]


def srm_check(
    config: ExperimentConfig,
    unit_counts: Mapping[tuple[str, int], int],
    history: Sequence[AllocationChange],
) -> dict[str, Any]:
    """Observed units per variant against the allocation in force when each unit arrived:
    expected = sum over allocation epochs of (units in the epoch x the epoch's shares)."""
    by_version = {h.version: h.allocation for h in history}
    observed: dict[str, int] = {v: 0 for v in config.variants}
    epoch_totals: dict[int, int] = defaultdict(int)
    for (variant, version), n in unit_counts.items():
        observed[variant] = observed.get(variant, 0) + n
        epoch_totals[version] += n
    expected: dict[str, float] = {v: 0.0 for v in config.variants}
    for version, total in epoch_totals.items():
        shares = by_version.get(version) or history[-1].allocation
        share_sum = sum(shares.values()) or 1.0
        for v in config.variants:
            expected[v] += total * shares.get(v, 0.0) / share_sum
    weights = expected if sum(expected.values()) > 0 else dict(history[-1].allocation)
    res = sample_ratio_mismatch(observed, weights, threshold=SRM_THRESHOLD)
    verdict = (
        f"sample ratio mismatch (p={res.p_value:.2g} < {SRM_THRESHOLD:g}): assignment or "
        "logging is broken; do not trust these results"
        if res.mismatch
        else f"no sample ratio mismatch (p={res.p_value:.3g})"
    )
    return {
        "chi2": _num(res.chi2),
        "p_value": res.p_value,
        "df": res.df,
        "observed": res.observed_counts,
        "expected": {k: round(v, 3) for k, v in res.expected_counts.items()},
        "mismatch": res.mismatch,
        "threshold": SRM_THRESHOLD,
        "verdict": verdict,
    }


def power_block(
    config: ExperimentConfig,
    kind: MetricKind,
    control: MetricStats,
    treatment: MetricStats,
    ratio: float,
) -> dict[str, Any]:
    """Power to detect a relative change of ``minimum_detectable_effect`` and what is left."""
    mde_rel = config.minimum_detectable_effect
    out: dict[str, Any] = {"mde_relative": mde_rel, "target_power": TARGET_POWER}
    base = control.mean
    if control.n < 2 or base == 0.0:
        return {**out, "available": False, "note": "needs a control group with n >= 2, mean != 0"}
    mde_abs = abs(base) * mde_rel
    alpha = config.alpha
    try:
        if kind is MetricKind.BINARY:
            if base + mde_abs > 1.0:
                mde_abs = -mde_abs  # detect a drop when a rise would leave [0, 1]
            required = required_sample_size_binary(base, mde_abs, alpha, TARGET_POWER, ratio)
            achieved = achieved_power_binary(base, mde_abs, control.n, treatment.n, alpha)
        else:
            pooled = [s for s in (control, treatment) if s.n >= 2]
            dof = sum(s.n - 1 for s in pooled)
            std = math.sqrt(sum(s.variance * (s.n - 1) for s in pooled) / dof)
            required = required_sample_size_continuous(std, mde_abs, alpha, TARGET_POWER, ratio)
            achieved = achieved_power_continuous(std, mde_abs, control.n, treatment.n, alpha)
    except ValueError as exc:  # a rate of exactly 0 or 1, or zero variance
        return {**out, "available": False, "note": str(exc)}
    left = remaining_sample_size(control.n, treatment.n, required, ratio)
    return {
        **out,
        "available": True,
        "mde_absolute": abs(mde_abs),
        "achieved_power": achieved,
        "required": {
            "control": math.ceil(required - 1e-9),
            "treatment": math.ceil(required * ratio - 1e-9),
        },
        "remaining": {"control": left.control, "treatment": left.treatment, "total": left.total},
        "fraction_complete": left.fraction_complete,
    }


def _comparison(
    config: ExperimentConfig,
    metric: str,
    control: MetricStats,
    treatment: MetricStats,
    seq: Any,
    ratio: float,
) -> dict[str, Any]:
    spec = config.metric_spec(metric)
    test = two_proportion_z_test if spec.kind is MetricKind.BINARY else welch_t_test
    r = test(control, treatment, config.confidence_level)
    sign = 1.0 if spec.higher_is_better else -1.0
    notes = [n for n in (r.note, seq.note) if n]
    if r.relative_lift is None:
        notes.append("relative lift undefined (empty group or control mean 0)")
    return {
        "metric_type": spec.kind.value,
        "higher_is_better": spec.higher_is_better,
        "primary": metric == config.primary,
        "control_mean": r.control_mean,
        "treatment_mean": r.treatment_mean,
        "control_n": r.control_n,
        "treatment_n": r.treatment_n,
        "absolute_difference": r.difference,
        "difference_ci": _interval(r.difference_ci),
        "relative_lift": _num(r.relative_lift),
        "relative_lift_ci": _interval(r.relative_lift_ci),
        "improvement_percent": 0.0 if r.relative_lift is None else sign * r.relative_lift * 100.0,
        "test": r.test,
        "statistic": _num(r.statistic),
        "p_value": r.p_value,
        "confidence_level": config.confidence_level,
        "sequential": {
            "always_valid_p": seq.always_valid_p,
            "confidence_sequence": [_num(seq.cs_low), _num(seq.cs_high)],
            "relative_confidence_sequence": (
                None
                if seq.relative_cs_low is None
                else [_num(seq.relative_cs_low), _num(seq.relative_cs_high)]
            ),
            "conclusive": seq.conclusive,
            "tau_squared": seq.tau_squared,
        },
        "power": power_block(config, spec.kind, control, treatment, ratio),
        "note": "; ".join(notes) or None,
    }


def build_analysis(
    info: ExperimentInfo,
    stats: Stats,
    unit_counts: Mapping[tuple[str, int], int],
    history: Sequence[AllocationChange],
    now: datetime,
) -> dict[str, Any]:
    config = info.config
    control = config.control
    alloc = info.allocation
    arms = {m: metric_arms(config, m, stats) for m in config.success_metrics}
    seqs = {m: sequential_results(config, arms[m]) for m in config.success_metrics}
    comparisons: dict[str, dict[str, Any]] = {}
    family: list[tuple[str, str]] = []
    for t in config.treatments:
        ratio = alloc.get(t, 0.0) / alloc[control] if alloc.get(control) and alloc.get(t) else 1.0
        key = f"{t}_vs_{control}"
        metric_comparisons = {}
        for m in config.success_metrics:
            metric_comparisons[m] = _comparison(
                config, m, arms[m][control], arms[m][t], seqs[m][t], ratio
            )
            family.append((key, m))
        comparisons[key] = {
            "control": control,
            "treatment": t,
            "metric_comparisons": metric_comparisons,
        }
    # Holm across every (treatment, metric) pair, for fixed-horizon and always-valid p alike.
    fixed = holm_adjust([comparisons[k]["metric_comparisons"][m]["p_value"] for k, m in family])
    always = holm_adjust(
        [comparisons[k]["metric_comparisons"][m]["sequential"]["always_valid_p"] for k, m in family]
    )
    for (key, m), p_fixed, p_seq in zip(family, fixed, always, strict=True):
        c = comparisons[key]["metric_comparisons"][m]
        c["p_value_adjusted"] = p_fixed
        c["sequential"]["always_valid_p_adjusted"] = p_seq
        c["significant"] = p_fixed <= config.alpha
        diff = c["absolute_difference"]
        better = (diff > 0) == c["higher_is_better"]
        c["winner"] = (
            (comparisons[key]["treatment"] if better else control)
            if c["significant"] and diff != 0
            else None
        )

    srm = srm_check(config, unit_counts, history)
    decision = auto_stop_decision(
        config, arms[config.primary], info.started_at, now, srm["mismatch"]
    )
    primary = {k: v["metric_comparisons"][config.primary] for k, v in comparisons.items()}
    recommendation = _recommend(config, srm, decision, primary, arms[config.primary])
    return {
        "experiment_id": info.experiment_id,
        "experiment_metadata": {
            **{k: v for k, v in info.to_dict().items() if k != "config"},
            "model_variants": dict(config.model_variants),
            "control_variant": control,
            "primary_metric": config.primary,
            "success_metrics": list(config.success_metrics),
            "allocation_mode": config.allocation_mode,
            "confidence_level": config.confidence_level,
            "minimum_sample_size": config.minimum_sample_size,
            "maximum_duration_days": config.maximum_duration_days,
        },
        "duration_hours": info.duration_hours(now),
        "analyzed_at": now.isoformat(),
        "variants": {
            v: {
                "model": config.model_variants[v],
                "allocation_percent": alloc.get(v, 0.0),
                "units": srm["observed"].get(v, 0),
                "metrics": {
                    m: {"n": arms[m][v].n, "mean": arms[m][v].mean, "std": arms[m][v].std}
                    for m in config.success_metrics
                },
            }
            for v in config.variants
        },
        "comparisons": comparisons,
        "srm": srm,
        "power": {k: {"metric": config.primary, **c["power"]} for k, c in primary.items()},
        "sequential": {
            "method": "normal-mixture mSPRT (always-valid p-values, confidence sequences)",
            "metric": config.primary,
            "alpha": config.alpha,
            "target_sample_size": sequential_target(config),
            "always_valid_p_holm": decision.always_valid_p,
            "comparisons": {k: c["sequential"] for k, c in primary.items()},
        },
        "recommendation": recommendation,
        "trustworthy": not srm["mismatch"],
    }


def _recommend(
    config: ExperimentConfig,
    srm: dict[str, Any],
    decision: Any,
    primary: dict[str, dict[str, Any]],
    arms: Mapping[str, MetricStats],
) -> dict[str, Any]:
    if srm["mismatch"]:
        return {"action": "invalid", "winner": None, "reason": srm["verdict"]}
    if decision.trigger == "conclusive" or (decision.trigger and decision.winner):
        return {"action": "stop_winner", "winner": decision.winner, "reason": decision.reason}
    if decision.trigger == "max_duration":
        return {"action": "stop_no_difference", "winner": None, "reason": decision.reason}
    smallest = min(a.n for a in arms.values())
    powered = [c["power"] for c in primary.values()]
    if (
        smallest >= config.minimum_sample_size
        and powered
        and all(p.get("available") and p["remaining"]["total"] == 0 for p in powered)
    ):
        return {
            "action": "stop_no_difference",
            "winner": None,
            "reason": (
                f"enough units to detect a {config.minimum_detectable_effect:.0%} change in "
                f"{config.primary} with {TARGET_POWER:.0%} power, and no difference found"
            ),
        }
    remaining = sum(p["remaining"]["total"] for p in powered if p.get("available"))
    extra = f"; about {remaining} more units needed for full power" if remaining else ""
    return {"action": "keep_running", "winner": None, "reason": decision.reason + extra}
