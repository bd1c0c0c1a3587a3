"""The auto-stop decision: a pure function of the config, the primary metric's sufficient
statistics per variant, the start time and the clock.

An experiment stops (COMPLETED) when

* ``maximum_duration_days`` have passed since it started, whatever the data says; or
* every variant holds at least ``minimum_sample_size`` units of the primary metric and the
  always-valid sequential test (normal-mixture mSPRT, ``core.stats.sequential_test``) rejects
  "no difference" for some treatment at ``alpha = 1 - confidence_level``, Holm-adjusted across
  the treatments.

Because the mSPRT p-value is valid at every look, this check may run after every batch of
results without inflating false positives. The mixing variance uses the stats engine's default,
tuned so the confidence sequence is tightest when both groups of a comparison hold
``minimum_sample_size`` units (``target_sample_size = 2 * minimum_sample_size``). A sample ratio
mismatch blocks a "winner" stop: the data cannot be trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.experiments.config import ExperimentConfig, MetricKind
from core.stats import (
    BinaryStats,
    ContinuousStats,
    MetricStats,
    SequentialResult,
    holm_adjust,
    sequential_test,
)


@dataclass(frozen=True)
class StopDecision:
    stop: bool
    reason: str
    trigger: str | None = None  # "conclusive" | "max_duration"
    winner: str | None = None
    always_valid_p: dict[str, float] = field(default_factory=dict)  # Holm-adjusted, per treatment


def make_stats(kind: MetricKind, n: int, total: float, total_sq: float) -> MetricStats:
    """Sufficient statistics of one variant's metric (float noise clamped into range)."""
    if kind is MetricKind.BINARY:
        return BinaryStats(n=n, successes=min(max(total, 0.0), float(n)))
    return ContinuousStats(n=n, sum=total, sum_sq=max(total_sq, 0.0))


def metric_arms(
    config: ExperimentConfig,
    metric: str,
    stats: Mapping[tuple[str, str], tuple[int, float, float]],
) -> dict[str, MetricStats]:
    kind = config.metric_spec(metric).kind
    return {v: make_stats(kind, *stats.get((v, metric), (0, 0.0, 0.0))) for v in config.variants}


def sequential_target(config: ExperimentConfig) -> int:
    return 2 * config.minimum_sample_size


def sequential_results(
    config: ExperimentConfig, arms: Mapping[str, MetricStats]
) -> dict[str, SequentialResult]:
    control = arms[config.control]
    return {
        t: sequential_test(
            control, arms[t], alpha=config.alpha, target_sample_size=sequential_target(config)
        )
        for t in config.treatments
    }


def _winner(
    config: ExperimentConfig, seq: Mapping[str, SequentialResult], conclusive: list[str]
) -> str:
    better = config.metric_spec(config.primary).higher_is_better
    sign = 1.0 if better else -1.0
    beating = [t for t in conclusive if sign * seq[t].difference > 0]
    if not beating:
        return config.control
    return max(beating, key=lambda t: sign * seq[t].difference)


def auto_stop_decision(
    config: ExperimentConfig,
    arms: Mapping[str, MetricStats],
    started_at: datetime | None,
    now: datetime,
    srm_mismatch: bool = False,
) -> StopDecision:
    """Whether a RUNNING experiment should stop now, and why (see the module docstring)."""
    seq = sequential_results(config, arms)
    treatments = config.treatments
    adjusted = holm_adjust([seq[t].always_valid_p for t in treatments])
    p_by = dict(zip(treatments, adjusted, strict=True))
    conclusive = [t for t in treatments if p_by[t] <= config.alpha]
    smallest = min(arms[v].n for v in config.variants)
    enough = smallest >= config.minimum_sample_size
    metric = config.primary
    if started_at is not None and now - started_at >= timedelta(days=config.maximum_duration_days):
        winner = _winner(config, seq, conclusive) if conclusive and not srm_mismatch else None
        verdict = f"; {winner} is ahead on {metric}" if winner else ""
        return StopDecision(
            True,
            f"maximum duration of {config.maximum_duration_days:g} days reached{verdict}",
            "max_duration",
            winner,
            p_by,
        )
    if srm_mismatch:
        return StopDecision(
            False, "sample ratio mismatch: results are not trustworthy", None, None, p_by
        )
    if not enough:
        return StopDecision(
            False,
            f"collecting data: smallest variant has {smallest} of "
            f"{config.minimum_sample_size} units on {metric}",
            always_valid_p=p_by,
        )
    if not conclusive:
        best = min(adjusted) if adjusted else 1.0
        return StopDecision(
            False,
            f"no always-valid difference on {metric} yet (p={best:.3g} > {config.alpha:g})",
            always_valid_p=p_by,
        )
    winner = _winner(config, seq, conclusive)
    p = min(p_by[t] for t in conclusive)
    return StopDecision(
        True,
        f"sequential test conclusive on {metric}: {winner} wins (always-valid p={p:.3g}, "
        f"every variant has >= {config.minimum_sample_size} units)",
        "conclusive",
        winner,
        p_by,
    )
