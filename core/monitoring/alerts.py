"""The seed's three alerts, evaluated in-process for users without Prometheus.

Each rule has a condition over the same numbers ``/metrics`` exposes and a ``for`` duration, with
Prometheus's semantics: a condition that holds starts *pending*; it *fires* once it has held for
the whole duration; it *resolves* when it stops holding. Firing and resolving are events.
The same rules, as Prometheus rules, are in ``deploy/prometheus/alerts.yml``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import events

if TYPE_CHECKING:
    from core.monitoring.serving_view import ServingView


@dataclass(frozen=True)
class AlertRule:
    name: str
    series: str  # which sample stream: latency_p95 | error_rate | ab_confidence
    threshold: float
    for_seconds: float
    severity: str
    summary: str


RULES = (
    AlertRule("ModelInferenceLatencyHigh", "latency_p95", 1000.0, 300.0, "warning",
              "Model inference latency is high"),
    AlertRule("ModelErrorRateHigh", "error_rate", 5.0, 120.0, "critical",
              "Model error rate is high"),
    AlertRule("ABTestSignificantResult", "ab_confidence", 0.95, 0.0, "info",
              "A/B test has reached statistical significance"),
)  # fmt: skip

Sample = tuple[str, dict[str, str], float]  # (series, labels, value)


@dataclass
class _State:
    pending_since: float
    firing: bool = False
    value: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)


class AlertEvaluator:
    def __init__(
        self, rules: Iterable[AlertRule] = RULES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rules = list(rules)
        self.clock = clock
        self._states: dict[tuple[str, tuple[tuple[str, str], ...]], _State] = {}

    def firing(self) -> list[dict[str, Any]]:
        return [
            {"alert": name, "labels": dict(key), "value": st.value}
            for (name, key), st in self._states.items()
            if st.firing
        ]

    def evaluate(self, samples: Iterable[Sample]) -> list[dict[str, Any]]:
        """Advance every rule with the current samples; returns the transitions it emitted."""
        now = self.clock()
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        transitions = []
        samples = list(samples)
        for rule in self.rules:
            for series, labels, value in samples:
                if series != rule.series or not value > rule.threshold:
                    continue
                key = (rule.name, tuple(sorted(labels.items())))
                seen.add(key)
                state = self._states.setdefault(key, _State(pending_since=now, labels=labels))
                state.value = value
                if not state.firing and now - state.pending_since >= rule.for_seconds:
                    state.firing = True
                    transitions.append(self._emit(rule, state, "firing"))
        for key in list(self._states):
            if key in seen:
                continue
            state = self._states.pop(key)
            if state.firing:
                rule = next(r for r in self.rules if r.name == key[0])
                transitions.append(self._emit(rule, state, "resolved"))
        return transitions

    @staticmethod
    def _emit(rule: AlertRule, state: _State, transition: str) -> dict[str, Any]:
        where = ", ".join(f"{k}={v}" for k, v in state.labels.items())
        message = (
            f"{rule.name} {transition}: {rule.summary} ({where}; value {state.value:.4g}, "
            f"threshold {rule.threshold:g})"
        )
        data = {
            "alert": rule.name,
            "state": transition,
            "labels": state.labels,
            "value": state.value,
            "threshold": rule.threshold,
            "for_seconds": rule.for_seconds,
        }
        events.emit(
            f"alert.{transition}",
            message,
            source=next(iter(state.labels.values()), ""),
            severity=rule.severity if transition == "firing" else "info",
            data=data,
        )
        return data


def serving_samples(manager: ServingView) -> list[Sample]:
    """latency_p95 and error_rate for each deployment served by this process."""
    samples: list[Sample] = []
    deployments = list(manager.served_deployments())
    for deployment_id in deployments:
        m = manager.current_metrics(deployment_id)
        if m is None or m.requests_in_window == 0:
            continue
        labels = {"deployment": deployment_id, "model_version": m.model_version}
        samples.append(("latency_p95", labels, m.p95_latency_ms))
        samples.append(("error_rate", labels, m.error_rate))
    return samples


def experiment_samples() -> list[Sample]:
    from core.monitoring.metrics import experiment_confidences

    return [
        (
            "ab_confidence",
            {"experiment": r["experiment"], "comparison": r["comparison"]},
            r["confidence"],
        )
        for r in experiment_confidences()
    ]
