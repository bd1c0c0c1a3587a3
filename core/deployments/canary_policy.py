"""The canary policy: pure, clock-injected, always-valid over the whole rollout.

``observe(state, stable=..., canary=..., now=...)`` folds one window's new traffic into
sufficient statistics and returns the next state and a decision: ``hold``, ``step``, ``promote``
or ``abort``. No SQL, no clock, no I/O; the controller persists ``state.to_dict()`` and applies
``decision.weight``. The state is O(1) in the length of the rollout: per-arm counts, two fixed
latency thresholds and (only until the thresholds are fixed) a bounded calibration buffer.

Evidence. Each metric is a difference of two rates, "how much worse the canary is", judged with
the normal-mixture confidence sequence of ``core.stats.sequential`` (valid at every look at
once, so the analysis frequency does not matter and no look is "spent"):

* ``error_rate``: canary error rate - stable error rate, margin ``error_margin`` (absolute);
* ``latency``: the share of canary latencies over ``T_c`` minus the share of stable latencies
  over ``T_s``. ``T_s`` is the ``latency_quantile`` of the stable arm's first
  ``calibration_samples`` latencies (those windows are not counted afterwards, so ``T_s`` is
  fixed before the data it is judged on), ``T_c = T_s * (1 + latency_tolerance) +
  latency_margin_ms``. If the canary is at most ``(1 + tolerance) * X + margin`` for a stable
  latency ``X``, its exceedance share is at most the stable one: H0 is "difference <= 0".
  Exceedance counts are O(1) state and, unlike a running quantile, make both arms Bernoulli;
* ``accuracy``: stable accuracy - canary accuracy on labelled requests, margin
  ``accuracy_margin``, once both arms have ``min_feedback`` labels;
* optional quality metrics (``canary.quality_metrics``: ``recall.CLASS``, ``precision.CLASS``,
  ``f1.CLASS``, ``macro_f1``), margin ``quality_margin``, from the arms' confusion counts; each
  takes an equal share of alpha and its always-valid construction is in canary_quality.py.

A metric says *worse* when its CS lies entirely above its margin; the policy then aborts. If the
canary is within the margin (H0), the chance that this ever happens during the rollout is at
most ``alpha / (3 + m)`` per metric with ``m`` quality metrics (Ville's inequality; the
difference of two running means has the covariance of a Brownian motion in information time
whatever the traffic split, so the
mixture martingale holds as weights change), hence at most ``alpha`` for the rollout. An
inconclusive look counts for nothing. The mixing scale ``tau`` is fixed per metric (a data-
dependent ``tau`` would break the martingale): the margin for errors and accuracy, a fifth of
the exceedance share ``1 - latency_quantile`` for latency; near those effects the CS is
tightest. Variances use Laplace-smoothed rates so that 0 or n events never give a zero variance.

Schedule. Weights follow ``canary.steps``; the policy steps once ``step_seconds`` (default
``canary_duration_hours`` over the weights below 100) have passed at a weight, unless it aborts.
The last step promotes once the canary has served ``min_samples`` requests in total.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from core.deployments.canary_evidence import MetricEvidence, difference_check
from core.deployments.config import DeploymentConfig
from core.errors import ValidationError

HOLD, STEP, PROMOTE, ABORT = "hold", "step", "promote", "abort"
METRICS = ("error_rate", "latency", "accuracy")
STATE_VERSION = 1


@dataclass(frozen=True)
class ArmWindow:
    """One analysis window's NEW traffic of one arm; latencies are successful requests' (or a
    uniform sample of them)."""

    requests: int
    errors: int
    latencies_ms: Sequence[float] = ()
    labelled: int = 0
    correct: int = 0
    # Labelled items by (true label, predicted class): for the quality metrics only.
    confusion: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if min(self.requests, self.errors, self.labelled, self.correct) < 0:
            raise ValidationError("window counts must be >= 0")
        if any(n < 0 for n in self.confusion.values()):
            raise ValidationError("window counts must be >= 0")
        if self.errors > self.requests or self.correct > self.labelled:
            raise ValidationError("a window has more errors than requests or correct than labelled")


@dataclass(frozen=True)
class ArmCounts:
    """One arm's totals over the rollout: the sufficient statistics of every test."""

    requests: int = 0
    errors: int = 0
    timed: int = 0  # latencies counted against the arm's threshold (after calibration)
    slow: int = 0  # of which over the threshold
    labelled: int = 0
    correct: int = 0
    confusion: tuple[tuple[str, str, int], ...] = ()  # (true, predicted, n), sorted

    @property
    def confusion_map(self) -> dict[tuple[str, str], int]:
        return {(t, p): n for t, p, n in self.confusion}


@dataclass(frozen=True)
class PolicySettings:
    steps: tuple[float, ...]
    start_weight: float
    step_seconds: float
    alpha: float
    error_margin: float
    latency_quantile: float
    latency_tolerance: float
    latency_margin_ms: float
    accuracy_margin: float
    min_samples: int
    min_feedback: int
    calibration_samples: int
    quality_metrics: tuple[str, ...] = ()
    quality_margin: float = 0.05
    labels: tuple[str, ...] = ()  # both versions' classes: the fixed set macro-F1 averages

    @property
    def metric_alpha(self) -> float:
        # Bonferroni: fixed before any data, labels or not; a quality metric takes a share.
        return self.alpha / (len(METRICS) + len(self.quality_metrics))


@dataclass(frozen=True)
class PolicyState:
    """Everything the policy remembers; ``to_dict``/``from_dict`` round-trip through JSON."""

    started_at: float
    weight: float
    step_started_at: float
    stable: ArmCounts = field(default_factory=ArmCounts)
    canary: ArmCounts = field(default_factory=ArmCounts)
    calibration_ms: tuple[float, ...] = ()  # stable latencies until the thresholds are fixed
    stable_threshold_ms: float | None = None
    canary_threshold_ms: float | None = None
    windows: int = 0
    min_p: tuple[float, float, float] = (1.0, 1.0, 1.0)  # running minimum, order of METRICS
    quality_min_p: tuple[tuple[str, float], ...] = ()  # (quality metric, running minimum)
    outcome: str | None = None  # "promote" or "abort" once the rollout has ended
    ended_at: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["calibration_ms"] = list(self.calibration_ms)
        data["min_p"] = dict(zip(METRICS, self.min_p, strict=True))
        data["quality_min_p"] = dict(self.quality_min_p)
        for arm in ("stable", "canary"):
            data[arm]["confusion"] = [list(c) for c in getattr(self, arm).confusion]
        return {"version": STATE_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyState:
        try:
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            names = {f.name for f in fields(cls)}
            values = {k: v for k, v in data.items() if k in names}
            for arm in ("stable", "canary"):  # states from before the quality metrics load
                counts = dict(data[arm])
                counts["confusion"] = tuple(
                    (str(t), str(p), int(n)) for t, p, n in counts.get("confusion", ())
                )
                values[arm] = ArmCounts(**counts)
            values["quality_min_p"] = tuple(
                (str(k), float(v)) for k, v in data.get("quality_min_p", {}).items()
            )
            values["calibration_ms"] = tuple(float(x) for x in data["calibration_ms"])
            values["min_p"] = tuple(float(data["min_p"][m]) for m in METRICS)
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"not a canary policy state: {exc}") from None


@dataclass(frozen=True)
class Decision:
    action: str  # hold, step, promote or abort
    weight: float  # the canary's traffic percent after the decision
    reason: str
    checks: tuple[MetricEvidence, ...] = ()

    @property
    def evidence(self) -> dict[str, Any]:
        """JSON-safe: the action, the reason and every metric's test, estimate, CS and p."""
        return _finite(
            {
                "action": self.action,
                "weight": self.weight,
                "reason": self.reason,
                "checks": [asdict(c) for c in self.checks],
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


class CanaryPolicy:
    """``start`` then ``observe`` once per analysis window; see the module docstring."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings

    @classmethod
    def from_config(cls, config: DeploymentConfig, labels: Sequence[str] = ()) -> CanaryPolicy:
        """``labels``: the classes of both versions, needed by ``macro_f1`` only."""
        c = config.canary
        steps = tuple(float(s) for s in c.steps)
        share = float(config.traffic_percentage)
        start = share if 0 < share < 100 else steps[0]  # as the controller starts a canary
        explicit = c.step_seconds
        below = [s for s in steps if s < 100] or [0.0]
        per_step = (
            float(explicit)
            if explicit is not None
            else float(config.canary_duration_hours) * 3600.0 / len(below)
        )
        settings = PolicySettings(
            steps=steps, start_weight=start, step_seconds=per_step, alpha=float(c.alpha),
            error_margin=float(c.error_margin), latency_quantile=float(c.latency_quantile),
            latency_tolerance=float(c.latency_tolerance),
            latency_margin_ms=float(c.latency_margin_ms),
            accuracy_margin=float(c.accuracy_margin), min_samples=int(c.min_samples),
            min_feedback=int(c.min_feedback), calibration_samples=int(c.calibration_samples),
            quality_metrics=tuple(c.quality_metrics), quality_margin=float(c.quality_margin),
            labels=tuple(labels),
        )  # fmt: skip
        if not 0 < settings.alpha < 1 or not 0 < settings.latency_quantile < 1:
            raise ValidationError("canary.alpha and canary.latency_quantile must lie in (0, 1)")
        return cls(settings)

    def start(self, now: float) -> PolicyState:
        w = self.settings.start_weight
        return PolicyState(started_at=now, weight=w, step_started_at=now, reason="started")

    def resume(self, state: PolicyState, now: float) -> PolicyState:
        """After a pause: the weight keeps its full time on a fresh step clock; the evidence
        stays (both arms are always compared on concurrent traffic, so a pause biases nothing)."""
        return state if state.outcome is not None else replace(state, step_started_at=now)

    def observe(
        self, state: PolicyState, *, stable: ArmWindow, canary: ArmWindow, now: float
    ) -> tuple[PolicyState, Decision]:
        if state.outcome is not None:  # idempotent after the end: the controller may retry
            return state, Decision(state.outcome, state.weight, f"rollout ended: {state.reason}")
        state = self._fold(state, stable, canary)
        checks = self._checks(state)
        state = replace(
            state,
            min_p=tuple(c.min_p for c in checks[: len(METRICS)]),
            quality_min_p=tuple((c.metric, c.min_p) for c in checks[len(METRICS) :]),
        )
        worse = [c for c in checks if c.outcome == "worse"]
        if worse:
            reason = "canary worse beyond the margin on " + ", ".join(_describe(c) for c in worse)
            state = self._end(state, ABORT, 0.0, reason, now)
            return state, Decision(ABORT, 0.0, reason, checks)
        s, status = self.settings, _status(checks)
        waited = now - state.step_started_at
        if waited < s.step_seconds:
            reason = f"{waited:.0f}s of {s.step_seconds:.0f}s at {state.weight:g}%; {status}"
            return state, Decision(HOLD, state.weight, reason, checks)
        target = next((w for w in s.steps if w > state.weight), 100.0)
        if target < 100:
            reason = f"{state.weight:g}% -> {target:g}% on schedule; {status}"
            state = replace(state, weight=target, step_started_at=now, reason=reason)
            return state, Decision(STEP, target, reason, checks)
        if state.canary.requests < s.min_samples:
            has = state.canary.requests
            reason = f"promotion waits for {s.min_samples} canary requests, has {has}"
            return state, Decision(HOLD, state.weight, reason, checks)
        reason = f"promoted on schedule; {status}"
        state = self._end(state, PROMOTE, 100.0, reason, now)
        return state, Decision(PROMOTE, 100.0, reason, checks)

    @staticmethod
    def _end(state: PolicyState, action: str, weight: float, reason: str, now: float):
        return replace(state, outcome=action, weight=weight, ended_at=now, reason=reason)

    def _fold(self, state: PolicyState, stable: ArmWindow, canary: ArmWindow) -> PolicyState:
        """Add the window to the counts; fix the latency thresholds once calibrated."""
        s = self.settings
        lat_s = np.asarray(stable.latencies_ms, dtype=np.float64)
        lat_c = np.asarray(canary.latencies_ms, dtype=np.float64)
        changes: dict[str, Any] = {"windows": state.windows + 1}
        timed = (0, 0, 0, 0)  # stable timed, slow, canary timed, slow
        if state.stable_threshold_ms is None:
            # The calibrating windows are not counted: T_s is fixed before the data it judges.
            need = s.calibration_samples - len(state.calibration_ms)
            buffer = state.calibration_ms + tuple(float(x) for x in lat_s[:need])
            if len(buffer) >= s.calibration_samples:
                t_s = float(np.quantile(buffer, s.latency_quantile))
                changes["stable_threshold_ms"] = t_s
                changes["canary_threshold_ms"] = (
                    t_s * (1 + s.latency_tolerance) + s.latency_margin_ms
                )
                buffer = ()
            changes["calibration_ms"] = buffer
        else:
            slow_s = int(np.count_nonzero(lat_s > state.stable_threshold_ms))
            slow_c = int(np.count_nonzero(lat_c > state.canary_threshold_ms))
            timed = (lat_s.size, slow_s, lat_c.size, slow_c)
        changes["stable"] = _add(state.stable, stable, timed[0], timed[1])
        changes["canary"] = _add(state.canary, canary, timed[2], timed[3])
        return replace(state, **changes)

    def _checks(self, state: PolicyState) -> tuple[MetricEvidence, ...]:
        s, st, ca = self.settings, state.stable, state.canary
        alpha = s.metric_alpha
        q_tail = 1.0 - s.latency_quantile
        latency_detail = (
            f"exceedances of {state.stable_threshold_ms:.1f} ms (stable) and "
            f"{state.canary_threshold_ms:.1f} ms (canary)"
            if state.stable_threshold_ms is not None
            else f"calibrating: {len(state.calibration_ms)}/{s.calibration_samples} stable"
        )
        base = (
            difference_check(
                "error_rate", "error-rate difference, normal-mixture CS",
                (st.requests, st.errors), (ca.requests, ca.errors), margin=s.error_margin,
                tau=max(s.error_margin, 0.005), alpha=alpha, min_n=s.min_samples,
                previous_min_p=state.min_p[0],
            ),
            difference_check(
                "latency", "exceedance share, normal-mixture CS", (st.timed, st.slow),
                (ca.timed, ca.slow), margin=0.0, tau=q_tail / 5.0, alpha=alpha,
                min_n=s.min_samples, previous_min_p=state.min_p[1], detail=latency_detail,
            ),
            difference_check(
                "accuracy", "accuracy difference, normal-mixture CS",
                (st.labelled, st.correct), (ca.labelled, ca.correct), margin=s.accuracy_margin,
                tau=max(s.accuracy_margin, 0.01), alpha=alpha, min_n=s.min_feedback,
                lower_is_worse=True, previous_min_p=state.min_p[2],
            ),
        )  # fmt: skip
        if not s.quality_metrics:
            return base
        from core.deployments.canary_quality import quality_checks
        from core.quality.names import check_quality_metrics

        return base + quality_checks(
            check_quality_metrics(s.quality_metrics, "canary.quality_metrics"), s.labels,
            st.confusion_map, ca.confusion_map, margin=s.quality_margin, alpha=alpha,
            min_n=s.min_feedback, previous_min_p=dict(state.quality_min_p),
        )  # fmt: skip


def _add(counts: ArmCounts, window: ArmWindow, timed: int, slow: int) -> ArmCounts:
    return ArmCounts(
        requests=counts.requests + window.requests,
        errors=counts.errors + window.errors,
        timed=counts.timed + timed,
        slow=counts.slow + slow,
        labelled=counts.labelled + window.labelled,
        correct=counts.correct + window.correct,
        confusion=_merge(counts.confusion, window.confusion),
    )


def _merge(
    totals: tuple[tuple[str, str, int], ...], new: Mapping[tuple[str, str], int]
) -> tuple[tuple[str, str, int], ...]:
    if not new:
        return totals
    merged = {(t, p): n for t, p, n in totals}
    for key, n in new.items():
        if n:
            merged[key] = merged.get(key, 0) + int(n)
    return tuple((t, p, n) for (t, p), n in sorted(merged.items()))


def _describe(c: MetricEvidence) -> str:
    p = "" if c.always_valid_p is None else f", p={c.always_valid_p:.2g}"
    est = (
        ""
        if c.stable is None or c.canary is None
        else (f"stable {c.stable:.4g}, canary {c.canary:.4g}, ")
    )
    return f"{c.metric} ({est}worse by [{c.cs_low:.4g}, {c.cs_high:.4g}] > margin {c.margin:g}{p})"


def _status(checks: Sequence[MetricEvidence]) -> str:
    return ", ".join(f"{c.metric} {c.outcome}" for c in checks)
