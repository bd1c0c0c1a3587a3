"""The auto-stop decision: a pure function of the config, the primary metric's sufficient
statistics per variant (per allocation epoch), the start time and the clock.

An experiment stops (COMPLETED) when

* ``maximum_duration_days`` have passed since it started, whatever the data says; or
* every variant holds at least ``minimum_sample_size`` units of the primary metric and the
  always-valid sequential test (normal-mixture mSPRT, run within allocation epochs and
  combined, see ``core.experiments.inference``) rejects "no difference" for some treatment at
  ``alpha = 1 - confidence_level``, Holm-adjusted across the treatments.

Because the mSPRT p-value is valid at every look, this check may run after every batch of
results without inflating false positives. The mixing variance uses the stats engine's default,
tuned so the confidence sequence is tightest when both groups of a comparison hold
``minimum_sample_size`` units (``target_sample_size = 2 * minimum_sample_size``). A sample ratio
mismatch, or arms that no allocation epoch lets us compare, block a "winner" stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.experiments.config import ExperimentConfig, MetricKind
from core.experiments.inference import ArmInference, Strata, as_strata, infer_metric
from core.stats import BinaryStats, ContinuousStats, MetricStats


@dataclass(frozen=True)
class StopDecision:
    stop: bool
    reason: str
    trigger: str | None = None  # "conclusive" | "max_duration"
    winner: str | None = None
    always_valid_p: dict[str, float] = field(default_factory=dict)  # Holm-adjusted, per treatment
    futile: bool = False  # every treatment's relative sequence lies within +-MDE
    untrusted: str | None = None  # why no valid comparison exists, when none does


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


def metric_epochs(
    config: ExperimentConfig,
    metric: str,
    epoch_stats: Mapping[tuple[str, str, int], tuple[int, float, float]],
) -> dict[str, tuple[MetricStats, ...]]:
    """Each variant's summaries of ``metric`` per allocation epoch, aligned across variants
    (epochs where no variant has this metric are left out)."""
    kind = config.metric_spec(metric).kind
    versions = sorted({ver for (_v, m, ver) in epoch_stats if m == metric}) or [1]
    return {
        v: tuple(
            make_stats(kind, *epoch_stats.get((v, metric, ver), (0, 0.0, 0.0))) for ver in versions
        )
        for v in config.variants
    }


def sequential_target(config: ExperimentConfig) -> int:
    return 2 * config.minimum_sample_size


def _winner(config: ExperimentConfig, inference: Mapping[str, ArmInference]) -> str | None:
    """The primary metric's winner: the best significant treatment that beats the control,
    else the control when some treatment is significantly worse, else None."""
    sign = 1.0 if config.metric_spec(config.primary).higher_is_better else -1.0
    beating = [t for t, r in inference.items() if r.winner == t]
    if beating:
        return max(beating, key=lambda t: sign * inference[t].sequential.difference)
    return config.control if any(r.winner for r in inference.values()) else None


def auto_stop_decision(
    config: ExperimentConfig,
    arms: Strata,
    started_at: datetime | None,
    now: datetime,
    srm_mismatch: bool = False,
    inference: Mapping[str, ArmInference] | None = None,
) -> StopDecision:
    """Whether a RUNNING experiment should stop now, and why (see the module docstring).
    ``arms``: the primary metric per variant, one summary or one per allocation epoch."""
    inference = inference or infer_metric(config, config.primary, arms)
    p_by = {t: r.p_adjusted for t, r in inference.items()}
    untrusted = next((r.note for r in inference.values() if not r.valid), None)
    winner = None if srm_mismatch or untrusted else _winner(config, inference)
    futile = not untrusted and all(r.futile for r in inference.values())
    smallest = min(sum(a.n for a in epochs) for epochs in as_strata(arms).values())
    enough = smallest >= config.minimum_sample_size
    metric = config.primary
    extra = {"always_valid_p": p_by, "futile": futile and enough, "untrusted": untrusted}
    if started_at is not None and now - started_at >= timedelta(days=config.maximum_duration_days):
        verdict = f"; {winner} is ahead on {metric}" if winner else ""
        return StopDecision(
            True,
            f"maximum duration of {config.maximum_duration_days:g} days reached{verdict}",
            "max_duration",
            winner,
            **extra,
        )
    if srm_mismatch:
        return StopDecision(
            False, "sample ratio mismatch: results are not trustworthy", None, None, **extra
        )
    if untrusted:
        return StopDecision(False, f"{metric}: {untrusted}", None, None, **extra)
    if not enough:
        return StopDecision(
            False,
            f"collecting data: smallest variant has {smallest} of "
            f"{config.minimum_sample_size} units on {metric}",
            **extra,
        )
    if winner is None:
        best = min(p_by.values()) if p_by else 1.0
        return StopDecision(
            False,
            f"no always-valid difference on {metric} yet (p={best:.3g} > {config.alpha:g})",
            **extra,
        )
    p = min(r.p_adjusted for r in inference.values() if r.significant)
    return StopDecision(
        True,
        f"sequential test conclusive on {metric}: {winner} wins (always-valid p={p:.3g}, "
        f"every variant has >= {config.minimum_sample_size} units)",
        "conclusive",
        winner,
        **extra,
    )
