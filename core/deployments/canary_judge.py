"""The canary judge: is the canary worse than the stable version on the same interval's traffic?

Pure: per-arm counts, latency samples and feedback in; a verdict with its evidence out. Both arms
serve concurrently from one deployment, so load and time of day affect them alike and the
comparison needs no baseline from the past.

Tests (all one-sided: the only question is "is the canary worse?")

* ``error_rate``: two-proportion z-test on failed requests (``core.stats.two_proportion_z_test``).
* ``latency_p95``: exact binomial test on exceedances. If the canary's p95 were at most
  ``T = stable p95 * (1 + latency_tolerance) + latency_margin_ms``, at most 5 % of its requests
  would take longer than ``T``; ``k`` such requests out of ``n`` have ``P(X >= k) <=
  binom.sf(k - 1, n, 0.05)``. The stable p95 comes from the same interval and is treated as
  known; the tolerance absorbs its sampling error and the jitter of a shared CPU. Chosen over a
  bootstrap CI of the p95 difference: exact, deterministic and O(n).
* ``latency_distribution``: Mann-Whitney U (canary stochastically slower), which catches a shift
  of the whole distribution that the p95 alone misses (a slower median with the same tail).
* ``accuracy``: two-proportion z-test on correct predictions, when both arms have at least
  ``min_feedback`` labelled requests; skipped otherwise.

Holm's step-down over the tests that ran keeps the chance that one analysis wrongly fails a
canary that is as good as stable at ``alpha``. A metric *fails* only when its test is significant
after Holm **and** the effect exceeds its margin (with enough traffic, 0.2 ms slower is
"significant" but harmless); it is *unsure* when the effect exceeds the margin but is not
significant yet.

Verdict: ``INCONCLUSIVE`` when either arm has fewer than ``min_samples`` requests (never FAIL on
too little data) or some metric is unsure; ``FAIL`` when some metric fails; ``PASS`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from core.deployments.sections import CanaryConfig

if TYPE_CHECKING:  # scipy (via core.stats) loads on the first analysis, not with the manager
    from core.stats import BinaryStats

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
P95_EXCEEDANCE = 0.05  # the share of requests slower than a true p95


@dataclass(frozen=True)
class ArmSample:
    """One arm's traffic in the analysed interval. ``latencies_ms`` are successful requests'."""

    requests: int = 0
    errors: int = 0
    latencies_ms: Sequence[float] = ()
    labelled: int = 0
    correct: int = 0


@dataclass(frozen=True)
class JudgeSettings:
    """The judge's settings; defaults (documented there) are ``CanaryConfig``'s."""

    min_samples: int = CanaryConfig.min_samples
    min_feedback: int = CanaryConfig.min_feedback
    alpha: float = CanaryConfig.alpha
    error_margin: float = CanaryConfig.error_margin
    latency_tolerance: float = CanaryConfig.latency_tolerance
    latency_margin_ms: float = CanaryConfig.latency_margin_ms
    accuracy_margin: float = CanaryConfig.accuracy_margin

    @classmethod
    def from_config(cls, canary: CanaryConfig | Mapping[str, Any]) -> JudgeSettings:
        """The judge's keys of a ``DeploymentConfig.canary`` section (or of a plain dict)."""
        data = canary if isinstance(canary, Mapping) else canary.to_dict()
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class MetricCheck:
    metric: str
    test: str
    outcome: str  # pass, fail, unsure or skipped
    stable: float | None = None
    canary: float | None = None
    effect: float | None = None  # how much worse the canary is (positive: worse)
    margin: float | None = None  # the effect tolerated
    p_value: float | None = None  # one-sided
    adjusted_p: float | None = None  # Holm, over this analysis's tests
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    outcome: str  # PASS, FAIL or INCONCLUSIVE
    reason: str
    checks: tuple[MetricCheck, ...] = ()
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: JudgeSettings = field(default_factory=JudgeSettings)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe evidence (non-finite numbers become None)."""
        return _finite(
            {
                "verdict": self.outcome,
                "reason": self.reason,
                "arms": self.arms,
                "checks": [asdict(c) for c in self.checks],
                "settings": asdict(self.settings),
            }
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _arm_summary(arm: ArmSample) -> dict[str, Any]:
    lat = np.asarray(arm.latencies_ms, dtype=np.float64)
    return {
        "requests": arm.requests,
        "errors": arm.errors,
        "error_rate": arm.errors / arm.requests if arm.requests else None,
        "latency_samples": int(lat.size),
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
        "labelled": arm.labelled,
        "accuracy": arm.correct / arm.labelled if arm.labelled else None,
    }


def _one_sided_worse(control: BinaryStats, treatment: BinaryStats, higher_is_worse: bool):
    """(one-sided p that the treatment is worse, two-sided result) from the z-test."""
    from core.stats import two_proportion_z_test

    result = two_proportion_z_test(control, treatment)
    worse_direction = result.difference > 0 if higher_is_worse else result.difference < 0
    half = result.p_value / 2.0
    return (half if worse_direction else 1.0 - half), result


def _error_check(stable: ArmSample, canary: ArmSample, s: JudgeSettings) -> MetricCheck:
    from core.stats import BinaryStats

    p, result = _one_sided_worse(
        BinaryStats(stable.requests, stable.errors),
        BinaryStats(canary.requests, canary.errors),
        higher_is_worse=True,
    )
    return MetricCheck(
        "error_rate", "two_proportion_z (one-sided)", "pending",
        stable=result.control_mean, canary=result.treatment_mean,
        effect=result.difference, margin=s.error_margin, p_value=p,
        detail=f"z={result.statistic:.3f}" + (f"; {result.note}" if result.note else ""),
    )  # fmt: skip


def _latency_checks(stable: ArmSample, canary: ArmSample, s: JudgeSettings) -> list[MetricCheck]:
    from scipy import stats

    ls = np.asarray(stable.latencies_ms, dtype=np.float64)
    lc = np.asarray(canary.latencies_ms, dtype=np.float64)
    if min(ls.size, lc.size) < s.min_samples:
        detail = (
            f"needs {s.min_samples} successful requests per arm, "
            f"has stable {ls.size}, canary {lc.size}"
        )
        return [
            MetricCheck("latency_p95", "binomial exceedance", "skipped", detail=detail),
            MetricCheck("latency_distribution", "mann_whitney_u", "skipped", detail=detail),
        ]
    p95_s, p95_c = float(np.percentile(ls, 95)), float(np.percentile(lc, 95))
    limit = p95_s * (1 + s.latency_tolerance) + s.latency_margin_ms
    exceed = int((lc > limit).sum())
    p_p95 = float(stats.binom.sf(exceed - 1, lc.size, P95_EXCEEDANCE))
    p95 = MetricCheck(
        "latency_p95", "binomial exceedance (one-sided)", "pending",
        stable=p95_s, canary=p95_c, effect=p95_c - p95_s, margin=limit - p95_s, p_value=p_p95,
        detail=f"{exceed}/{lc.size} canary requests over {limit:.2f} ms "
        f"(expected at most {P95_EXCEEDANCE:.0%})",
    )  # fmt: skip
    med_s, med_c = float(np.median(ls)), float(np.median(lc))
    mw = stats.mannwhitneyu(lc, ls, alternative="greater")
    p_slower = float(mw.statistic) / (lc.size * ls.size)  # P(canary > stable), 0.5 = no shift
    dist = MetricCheck(
        "latency_distribution", "mann_whitney_u (one-sided)", "pending",
        stable=med_s, canary=med_c, effect=med_c - med_s,
        margin=med_s * s.latency_tolerance + s.latency_margin_ms, p_value=float(mw.pvalue),
        detail=f"medians in ms; P(canary slower than stable)={p_slower:.3f}",
    )  # fmt: skip
    return [p95, dist]


def _accuracy_check(stable: ArmSample, canary: ArmSample, s: JudgeSettings) -> MetricCheck:
    if min(stable.labelled, canary.labelled) < s.min_feedback:
        return MetricCheck(
            "accuracy", "two_proportion_z", "skipped",
            detail=f"needs {s.min_feedback} labelled requests per arm, "
            f"has stable {stable.labelled}, canary {canary.labelled}",
        )  # fmt: skip
    from core.stats import BinaryStats

    p, result = _one_sided_worse(
        BinaryStats(stable.labelled, stable.correct),
        BinaryStats(canary.labelled, canary.correct),
        higher_is_worse=False,
    )
    return MetricCheck(
        "accuracy", "two_proportion_z (one-sided)", "pending",
        stable=result.control_mean, canary=result.treatment_mean,
        effect=-result.difference, margin=s.accuracy_margin, p_value=p,
        detail=f"z={result.statistic:.3f}",
    )  # fmt: skip


def _describe(c: MetricCheck) -> str:
    return f"{c.metric} ({c.stable:.4g} -> {c.canary:.4g}, p={c.adjusted_p:.2g})"


def judge(stable: ArmSample, canary: ArmSample, settings: JudgeSettings | None = None) -> Verdict:
    """Compare the canary arm with the stable arm; see the module docstring for the rules."""
    from core.stats import holm_adjust

    s = settings or JudgeSettings()
    arms = {"stable": _arm_summary(stable), "canary": _arm_summary(canary)}
    short = [
        f"{name} {arm.requests} < {s.min_samples}"
        for name, arm in (("stable", stable), ("canary", canary))
        if arm.requests < s.min_samples
    ]
    if short:
        reason = f"too few samples: {', '.join(short)} requests"
        return Verdict(INCONCLUSIVE, reason, (), arms, s)

    raw = [_error_check(stable, canary, s), *_latency_checks(stable, canary, s)]
    raw.append(_accuracy_check(stable, canary, s))
    tested = [i for i, c in enumerate(raw) if c.p_value is not None]
    adjusted = dict(zip(tested, holm_adjust([raw[i].p_value for i in tested]), strict=True))
    checks: list[MetricCheck] = []
    for i, c in enumerate(raw):
        if i not in adjusted:
            checks.append(c)
            continue
        material = c.effect is not None and c.margin is not None and c.effect > c.margin
        significant = adjusted[i] < s.alpha
        outcome = "fail" if material and significant else "unsure" if material else "pass"
        checks.append(MetricCheck(**{**asdict(c), "outcome": outcome, "adjusted_p": adjusted[i]}))
    failed = [c for c in checks if c.outcome == "fail"]
    unsure = [c for c in checks if c.outcome == "unsure"]
    judged = [c.metric for c in checks if c.outcome == "pass"]
    if failed:
        reason = "canary worse on " + ", ".join(_describe(c) for c in failed)
        return Verdict(FAIL, reason, tuple(checks), arms, s)
    if unsure:
        reason = (
            "worse by more than the margin but not significantly yet on "
            + ", ".join(_describe(c) for c in unsure)
            + "; waiting for more data"
        )
        return Verdict(INCONCLUSIVE, reason, tuple(checks), arms, s)
    skipped = [c.metric for c in checks if c.outcome == "skipped"]
    reason = "canary not worse on " + ", ".join(judged)
    if skipped:
        reason += f" ({', '.join(skipped)} skipped)"
    return Verdict(PASS, reason, tuple(checks), arms, s)
