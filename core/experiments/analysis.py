"""``analyze_experiment``'s result, built from sufficient statistics only (constant time in the
number of results; linear in the number of allocation epochs).

Shape (the seed's keys first)::

    experiment_metadata: {experiment_id, name, status, started_at, ..., control_variant}
    duration_hours: float
    comparisons: {"<treatment>_vs_<control>": {control, treatment, metric_comparisons: {
        metric: {improvement_percent, winner, control_mean, treatment_mean, control_n,
                 treatment_n, absolute_difference, difference_ci, relative_lift,
                 relative_lift_ci, p_value, p_value_adjusted, significant, test, sequential,
                 power, within_mde, valid, epochs, ...}}}}
    variants, srm, power, sequential, validity, recommendation, trustworthy, trust_notes

Conventions: effects are treatment minus control, estimated within allocation epochs and
combined when the split changed (``core.experiments.inference``; ``control_mean`` and
``treatment_mean`` are then the epoch-weighted means the difference is taken between).
``improvement_percent`` is the relative lift in percent, sign-flipped for lower-is-better
metrics, so positive always means "treatment is better" (0.0 when the lift is undefined: empty
group or control mean 0; see ``note``). ``significant``, ``winner`` and the recommendation all
come from the always-valid mSPRT p-value (Holm-adjusted across a metric's treatments), so they
never disagree; fixed-horizon ``p_value`` / ``p_value_adjusted`` (Holm across every metric and
treatment) and the intervals next to them are valid only at a sample size fixed in advance.
``stop_no_difference`` is said only when the relative confidence sequence lies within
``+-minimum_detectable_effect``; ``validity`` lists what stays valid under reallocation;
``trustworthy`` is False with ``trust_notes`` naming why (sample ratio mismatch, or arms no
allocation epoch lets us compare). Infinite interval ends are reported as None (plain JSON).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from core.experiments.config import ExperimentConfig, MetricKind
from core.experiments.inference import ArmInference, infer_metric, pooled
from core.experiments.models import AllocationChange, ExperimentInfo
from core.experiments.quality_analysis import count_metric_comparison, is_count_metric
from core.experiments.stopping import (
    StopDecision,
    auto_stop_decision,
    metric_epochs,
    sequential_target,
)
from core.experiments.validity import validity_block
from core.stats import (
    MetricStats,
    achieved_power_binary,
    achieved_power_continuous,
    holm_adjust,
    remaining_sample_size,
    required_sample_size_binary,
    required_sample_size_continuous,
    sample_ratio_mismatch,
)

SRM_THRESHOLD = 0.001
TARGET_POWER = 0.8

EpochStats = Mapping[tuple[str, str, int], tuple[int, float, float]]


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
    inf: ArmInference,
    ratio: float,
) -> dict[str, Any]:
    spec = config.metric_spec(metric)
    r, seq = inf.fixed, inf.sequential
    sign = 1.0 if spec.higher_is_better else -1.0
    notes = [inf.note] if not inf.valid else [n for n in (r.note, seq.note, inf.note) if n]
    if inf.valid and r.relative_lift is None:
        notes.append("relative lift undefined (empty group or control mean 0)")
    est = inf.estimate
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
            "always_valid_p_adjusted": inf.p_adjusted,
            "confidence_sequence": [_num(seq.cs_low), _num(seq.cs_high)],
            "relative_confidence_sequence": (
                None
                if seq.relative_cs_low is None
                else [_num(seq.relative_cs_low), _num(seq.relative_cs_high)]
            ),
            "conclusive": inf.significant,
            "tau_squared": seq.tau_squared,
        },
        "significant": inf.significant,
        "winner": inf.winner,
        "within_mde": inf.futile,
        "valid": inf.valid,
        "epochs": {
            "total": inf.epochs,
            "used": est.strata_used if est else 0,
            "skipped": est.strata_skipped if est else inf.epochs,
            "units_skipped": est.units_skipped if est else 0,
            "estimator": ESTIMATOR_STRATIFIED if inf.epochs > 1 else ESTIMATOR_PLAIN,
        },
        "power": power_block(config, spec.kind, control, treatment, ratio),
        "note": "; ".join(notes) or None,
    }


ESTIMATOR_PLAIN = "difference of means (one allocation epoch)"
ESTIMATOR_STRATIFIED = (
    "differences within allocation epochs, combined with inverse-variance weights; means are "
    "the same weighted averages"
)


def build_analysis(
    info: ExperimentInfo,
    epoch_stats: EpochStats,
    unit_counts: Mapping[tuple[str, int], int],
    history: Sequence[AllocationChange],
    now: datetime,
    confusion: Mapping[str, Mapping[tuple[str, str], int]] | None = None,
    labels: Sequence[str] = (),
) -> dict[str, Any]:
    """``confusion`` (variant -> labelled (true, predicted) counts) and ``labels`` feed the F1
    metrics (quality_analysis.py); the others come from ``epoch_stats``."""
    config = info.config
    control = config.control
    alloc = info.allocation
    counted = [m for m in config.success_metrics if is_count_metric(m)]
    per_request = [m for m in config.success_metrics if m not in counted]
    epochs = {m: metric_epochs(config, m, epoch_stats) for m in per_request}
    arms = {m: {v: pooled(e) for v, e in epochs[m].items()} for m in per_request}
    inference = {m: infer_metric(config, m, epochs[m]) for m in per_request}
    confusion = confusion or {}
    comparisons: dict[str, dict[str, Any]] = {}
    family: list[tuple[str, str]] = []
    for t in config.treatments:
        ratio = alloc.get(t, 0.0) / alloc[control] if alloc.get(control) and alloc.get(t) else 1.0
        key = f"{t}_vs_{control}"
        metric_comparisons = {}
        for m in config.success_metrics:
            if m in counted:
                metric_comparisons[m] = count_metric_comparison(
                    m, labels, confusion.get(control, {}), confusion.get(t, {}),
                    primary=False, confidence=config.confidence_level,
                )  # fmt: skip
                continue
            metric_comparisons[m] = _comparison(
                config, m, arms[m][control], arms[m][t], inference[m][t], ratio
            )
            family.append((key, m))
        comparisons[key] = {
            "control": control,
            "treatment": t,
            "metric_comparisons": metric_comparisons,
        }
    # Fixed-horizon p-values, Holm across every (treatment, metric) pair: shown, never decisive.
    fixed = holm_adjust([comparisons[k]["metric_comparisons"][m]["p_value"] for k, m in family])
    for (key, m), p_fixed in zip(family, fixed, strict=True):
        comparisons[key]["metric_comparisons"][m]["p_value_adjusted"] = p_fixed

    srm = srm_check(config, unit_counts, history)
    decision = auto_stop_decision(
        config,
        epochs[config.primary],
        info.started_at,
        now,
        srm["mismatch"],
        inference[config.primary],
    )
    primary = {k: v["metric_comparisons"][config.primary] for k, v in comparisons.items()}
    recommendation = _recommend(config, srm, decision, primary, arms[config.primary])
    trust_notes = ([srm["verdict"]] if srm["mismatch"] else []) + [
        f"{m} ({t} vs {control}): {inf.note}"
        for m in per_request
        for t, inf in inference[m].items()
        if not inf.valid
    ]
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
                    **{
                        m: {"n": arms[m][v].n, "mean": arms[m][v].mean, "std": arms[m][v].std}
                        for m in per_request
                    },
                    **{m: {"n": sum(confusion.get(v, {}).values())} for m in counted},
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
        "validity": validity_block(config, history, epochs[config.primary]),
        "recommendation": recommendation,
        "trustworthy": not trust_notes,
        "trust_notes": trust_notes,
    }


def _recommend(
    config: ExperimentConfig,
    srm: dict[str, Any],
    decision: StopDecision,
    primary: dict[str, dict[str, Any]],
    arms: Mapping[str, MetricStats],
) -> dict[str, Any]:
    if srm["mismatch"]:
        return {"action": "invalid", "winner": None, "reason": srm["verdict"]}
    if decision.untrusted:
        return {"action": "invalid", "winner": None, "reason": decision.reason}
    if decision.winner and (decision.trigger or decision.stop):
        return {"action": "stop_winner", "winner": decision.winner, "reason": decision.reason}
    mde = config.minimum_detectable_effect
    if decision.futile:
        return {
            "action": "stop_no_difference",
            "winner": None,
            "reason": (
                f"the {1 - config.alpha:.0%} confidence sequence of the relative change in "
                f"{config.primary} lies within +-{mde:.0%} (the minimum detectable effect) for "
                f"every treatment; were the true change {mde:.0%}, this would be said at most "
                f"{config.alpha:.0%} of the time"
            ),
        }
    if decision.trigger == "max_duration":
        return {
            "action": "stop_inconclusive",
            "winner": None,
            "reason": (
                f"{decision.reason}; no always-valid difference, and a change of "
                f"+-{mde:.0%} is not ruled out"
            ),
        }
    powered = [c["power"] for c in primary.values()]
    remaining = sum(p["remaining"]["total"] for p in powered if p.get("available"))
    extra = f"; about {remaining} more units needed for full power" if remaining else ""
    return {"action": "keep_running", "winner": None, "reason": decision.reason + extra}
