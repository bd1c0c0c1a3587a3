"""One inference per (metric, treatment), shared by the analysis, the recommendation and the
auto-stop check, so they can never disagree.

Units are compared within allocation epochs (the allocation version in force when a unit was
first seen). With one epoch that is the plain comparison of the two arms. With several (a
manual reallocation, a bandit), each epoch's difference is estimated on its own and the
epochs are combined by inverse-variance weights (``core.stats.stratified``); the fixed-horizon
test, the mSPRT and the relative lift all run on that combined estimate. Pooling the epochs
instead would compare a control sampled mostly in one period with a treatment sampled mostly
in another, which under drift manufactures an effect (Simpson's paradox).

Decisions use only the always-valid mSPRT p-value, Holm-adjusted across the treatments of a
metric: ``significant`` is ``p <= alpha``, the ``winner`` is the better arm when significant,
and the recommendation's winner is the primary metric's. ``futile`` (the futility rule behind
"stop, no difference") holds when the relative lift's confidence sequence lies strictly
inside ``+-minimum_detectable_effect``: if the true lift is the MDE, the sequence excludes it
with probability at most ``alpha`` at any time, so the rule says "no difference" at most
``alpha`` of the time there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.experiments.config import ExperimentConfig, MetricKind
from core.stats import (
    BinaryStats,
    ComparisonResult,
    ContinuousStats,
    MetricStats,
    SequentialResult,
    TwoArmEstimate,
    combine_strata,
    holm_adjust,
    sequential_from_estimate,
    sequential_test,
    stratified_comparison,
    two_proportion_z_test,
    welch_t_test,
)

# variant -> its summary in each allocation epoch (aligned by epoch across variants), or one
# summary when there is a single epoch.
Strata = Mapping[str, MetricStats | Sequence[MetricStats]]

NO_COMMON_EPOCH = (
    "no allocation epoch holds >= 2 units of both arms with any variation, so the arms could "
    "only be compared across time; no valid estimate exists"
)


@dataclass(frozen=True)
class ArmInference:
    """What is known about ``treatment - control`` on one metric.

    ``valid`` is False when both arms have data but no epoch lets them be compared (the
    numbers are then the degenerate "no information" ones). ``p_adjusted`` is the always-valid
    p-value Holm-adjusted across the metric's treatments; ``significant`` and ``winner`` derive
    from it alone.
    """

    treatment: str
    epochs: int
    estimate: TwoArmEstimate | None
    fixed: ComparisonResult
    sequential: SequentialResult
    valid: bool
    p_adjusted: float
    significant: bool
    winner: str | None
    futile: bool
    note: str | None


def as_strata(arms: Strata) -> dict[str, tuple[MetricStats, ...]]:
    return {
        v: (a,) if isinstance(a, BinaryStats | ContinuousStats) else tuple(a)
        for v, a in arms.items()
    }


def pooled(strata: Sequence[MetricStats]) -> MetricStats:
    total = strata[0]
    for s in strata[1:]:
        total = total.merge(s)  # type: ignore[arg-type]
    return total


def _nonnegative(binary: bool, estimate: TwoArmEstimate | None) -> bool:
    # Rates cannot be negative; for a measurement, the lift is read on a ratio scale (>= -100 %)
    # when both observed means are >= 0, the case for latencies, scores and counts.
    if binary or estimate is None:
        return binary
    return estimate.control_mean > 0.0 and estimate.treatment_mean >= 0.0


def _one(
    config: ExperimentConfig,
    binary: bool,
    control: tuple[MetricStats, ...],
    arm: tuple[MetricStats, ...],
) -> tuple[TwoArmEstimate | None, ComparisonResult, SequentialResult, bool, str | None]:
    alpha, conf, target = config.alpha, config.confidence_level, 2 * config.minimum_sample_size
    if len(control) == 1:
        c, t = control[0], arm[0]
        if binary:
            fixed = two_proportion_z_test(c, t, conf)  # type: ignore[arg-type]
        else:
            fixed = welch_t_test(c, t, conf)  # type: ignore[arg-type]
        est = TwoArmEstimate.from_arms(c, t) if min(c.n, t.n) >= 2 else None
        nonneg = _nonnegative(binary, est) if est else binary
        seq = sequential_test(c, t, alpha=alpha, target_sample_size=target, nonnegative=nonneg)
        return est, fixed, seq, True, None
    est = combine_strata(list(zip(control, arm, strict=True)))
    if est is None:
        c, t = pooled(control), pooled(arm)
        valid = not (min(c.n, t.n) >= 2 and c.merge(t).variance > 0)  # type: ignore[arg-type]
        # No epoch can compare the arms: report "no information", never the pooled contrast.
        if binary:
            nothing = BinaryStats(0, 0.0)
            fixed = two_proportion_z_test(nothing, nothing, conf)
        else:
            nothing = ContinuousStats(0, 0.0, 0.0)
            fixed = welch_t_test(nothing, nothing, conf)
        seq = sequential_test(nothing, nothing, alpha=alpha, target_sample_size=target)
        return None, fixed, seq, valid, None if valid else NO_COMMON_EPOCH
    nonneg = _nonnegative(binary, est)
    fixed = stratified_comparison(est, binary, conf, nonneg)
    seq = sequential_from_estimate(est, alpha, None, target, nonneg)
    note = None
    if est.strata_skipped:
        note = (
            f"{est.strata_skipped} allocation epoch(s) with {est.units_skipped} units left out "
            "(an arm with < 2 units or no variation)"
        )
    return est, fixed, seq, True, note


def infer_metric(config: ExperimentConfig, metric: str, arms: Strata) -> dict[str, ArmInference]:
    """Every treatment of ``config`` against the control on ``metric`` (see the module
    docstring); ``arms`` holds each variant's summaries per allocation epoch."""
    spec = config.metric_spec(metric)
    binary = spec.kind is MetricKind.BINARY
    strata = as_strata(arms)
    control = strata[config.control]
    parts = {t: _one(config, binary, control, strata[t]) for t in config.treatments}
    adjusted = holm_adjust([parts[t][2].always_valid_p for t in config.treatments])
    mde = config.minimum_detectable_effect
    out: dict[str, ArmInference] = {}
    for t, p_adj in zip(config.treatments, adjusted, strict=True):
        est, fixed, seq, valid, note = parts[t]
        significant = valid and p_adj <= config.alpha and seq.difference != 0.0
        better = (seq.difference > 0) == spec.higher_is_better
        low, high = seq.relative_cs_low, seq.relative_cs_high
        out[t] = ArmInference(
            treatment=t,
            epochs=len(control),
            estimate=est,
            fixed=fixed,
            sequential=seq,
            valid=valid,
            p_adjusted=p_adj,
            significant=significant,
            winner=(t if better else config.control) if significant else None,
            futile=valid and low is not None and high is not None and -mde < low and high < mde,
            note=note,
        )
    return out
