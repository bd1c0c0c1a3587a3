"""One metric's evidence at one look of the canary policy: the always-valid check of "the canary's
rate is worse than the stable rate by more than a margin" (normal-mixture confidence sequence of
``core.stats.sequential``). Shared by the policy's own metrics (canary_policy.py) and the quality
metrics (canary_quality.py), so neither imports the other's internals."""

from __future__ import annotations

from dataclasses import dataclass

from core.stats.sequential import always_valid_p_value, confidence_sequence_halfwidth


@dataclass(frozen=True)
class MetricEvidence:
    """One metric at one look. ``difference`` is how much worse the canary is (positive: worse);
    ``always_valid_p`` is for H0 "difference <= margin" (1 when the estimate is below it)."""

    metric: str
    test: str
    outcome: str  # worse, within (CS below the margin), inconclusive or skipped
    margin: float
    alpha: float
    n_stable: int
    n_canary: int
    stable: float | None = None
    canary: float | None = None
    difference: float | None = None
    cs_low: float | None = None
    cs_high: float | None = None
    always_valid_p: float | None = None
    min_p: float = 1.0
    detail: str = ""


def _smoothed_variance(events: int, n: int) -> float:
    rate = (events + 1.0) / (n + 2.0)
    return rate * (1.0 - rate) / n


def difference_check(
    metric: str, test: str, stable: tuple[int, int], canary: tuple[int, int], *,
    margin: float, tau: float, alpha: float, min_n: int, lower_is_worse: bool = False,
    previous_min_p: float = 1.0, detail: str = "",
) -> MetricEvidence:  # fmt: skip
    """Always-valid check of "canary rate worse than stable rate by more than ``margin``";
    ``stable``/``canary`` are (n, events)."""
    (n_s, k_s), (n_c, k_c) = stable, canary
    base = dict(metric=metric, test=test, margin=margin, alpha=alpha, n_stable=n_s, n_canary=n_c)
    if min(n_s, n_c) < min_n:
        short = f"needs {min_n} per arm, has stable {n_s}, canary {n_c}"
        detail = f"{detail}; {short}" if detail else short
        return MetricEvidence(**base, outcome="skipped", min_p=previous_min_p, detail=detail)
    rate_s, rate_c = k_s / n_s, k_c / n_c
    diff = rate_s - rate_c if lower_is_worse else rate_c - rate_s
    variance = _smoothed_variance(k_s, n_s) + _smoothed_variance(k_c, n_c)
    half = float(confidence_sequence_halfwidth(variance, tau * tau, alpha))
    p = float(always_valid_p_value(diff - margin, variance, tau * tau)) if diff > margin else 1.0
    low, high = diff - half, diff + half
    outcome = "worse" if low > margin else "within" if high <= margin else "inconclusive"
    return MetricEvidence(
        **base, outcome=outcome, stable=rate_s, canary=rate_c, difference=diff,
        cs_low=low, cs_high=high, always_valid_p=p, min_p=min(previous_min_p, p), detail=detail,
    )  # fmt: skip
