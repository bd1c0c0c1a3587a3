"""Operating characteristics of the canary policy, by simulating whole rollouts.

Pure and seeded: a rollout drives ``CanaryPolicy`` exactly as the controller would, one window
per analysis interval, on synthetic traffic. Per window, requests are Poisson(rps * interval),
split between the arms by the current weight (binomial), errors are binomial per arm and
successful requests' latencies lognormal (median, sigma). Only a uniform sample of at most
``latency_cap`` latencies per arm and window is drawn, like the controller's reservoir (5,000 per
arm and tick): the counts are exact, the latency evidence is at most what production has.
With ``feedback_rate`` > 0, that share of each arm's successful requests gets a true label:
classes by ``class_mix``, right with the arm's per-class recall, and a wrong prediction spread
evenly over the other classes; the labelled confusion counts feed accuracy and the quality
metrics (``canary.quality_metrics``) as the controller's SQL counts would.

``simulate`` repeats rollouts and summarises: abort probability with its Clopper-Pearson
interval, aborts before the canary reaches 50 %, median time to abort, and time to promotion.
The benchmark (benchmarks/canary_sim.py) and ``nightscan canary simulate`` both call it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from core.deployments.canary_policy import ABORT, PROMOTE, ArmWindow, CanaryPolicy
from core.deployments.config import DeploymentConfig
from core.errors import ValidationError

UNFINISHED = "unfinished"
HORIZON_FACTOR = 2.0  # a rollout still running at twice its planned duration counts as stalled


@dataclass(frozen=True)
class Scenario:
    """The traffic both arms see; the canary's rate and median default to the stable arm's."""

    rps: float
    stable_error_rate: float = 0.02
    stable_median_ms: float = 100.0
    canary_error_rate: float | None = None
    canary_median_ms: float | None = None
    latency_sigma: float = 0.5
    interval_s: float | None = None  # None: the configuration's analysis_interval_s
    latency_cap: int = 1000
    feedback_rate: float = 0.0  # share of successful requests that get a true label
    class_mix: tuple[float, ...] = ()  # true-class prevalence (sums to 1)
    stable_recall: tuple[float, ...] = ()  # per class: P(predicted right | true class)
    canary_recall: tuple[float, ...] | None = None  # default: the stable arm's
    class_names: tuple[str, ...] = ()  # default c0, c1, ...

    def __post_init__(self) -> None:
        if not 0 <= self.feedback_rate <= 1:
            raise ValidationError(f"feedback_rate must lie in [0, 1], got {self.feedback_rate}")
        k = len(self.class_mix)
        recalls = [self.stable_recall, self.canary_recall or self.stable_recall]
        if self.feedback_rate > 0 and (
            k < 2
            or abs(sum(self.class_mix) - 1) > 1e-9
            or any(len(r) != k or not all(0 <= x <= 1 for x in r) for r in recalls)
            or (self.class_names and len(self.class_names) != k)
        ):
            raise ValidationError(
                "feedback needs a class_mix of >= 2 shares summing to 1 and one recall in "
                "[0, 1] per class for each arm"
            )
        rates = (self.stable_error_rate, self.canary_error_rate)
        medians = (self.stable_median_ms, self.canary_median_ms)
        if not (math.isfinite(self.rps) and self.rps > 0):
            raise ValidationError(f"rps must be > 0, got {self.rps}")
        if any(r is not None and not 0 <= r <= 1 for r in rates):
            raise ValidationError(f"error rates must lie in [0, 1], got {rates}")
        if any(m is not None and not (math.isfinite(m) and m > 0) for m in medians):
            raise ValidationError(f"latency medians must be > 0 ms, got {medians}")
        if not 0 <= self.latency_sigma <= 5:
            raise ValidationError(f"latency sigma must lie in [0, 5], got {self.latency_sigma}")
        if self.interval_s is not None and not self.interval_s > 0:
            raise ValidationError(f"the analysis interval must be > 0 s, got {self.interval_s}")
        if self.latency_cap < 1:
            raise ValidationError(f"latency_cap must be >= 1, got {self.latency_cap}")

    @property
    def canary_errors(self) -> float:
        return self.stable_error_rate if self.canary_error_rate is None else self.canary_error_rate

    @property
    def canary_median(self) -> float:
        return self.stable_median_ms if self.canary_median_ms is None else self.canary_median_ms

    @property
    def labels(self) -> tuple[str, ...]:
        return self.class_names or tuple(f"c{i}" for i in range(len(self.class_mix)))

    @property
    def identical(self) -> bool:
        same_recall = self.canary_recall is None or self.canary_recall == self.stable_recall
        return same_recall and (self.canary_errors, self.canary_median) == (
            self.stable_error_rate,
            self.stable_median_ms,
        )


@dataclass(frozen=True)
class RolloutOutcome:
    action: str  # promote, abort or unfinished
    seconds: float  # from the start to the deciding window
    weight: float  # the canary's weight during the deciding window
    metric: str | None = None  # the first metric that said "worse"


@dataclass(frozen=True)
class OperatingCharacteristics:
    scenario: Scenario
    rollouts: int
    interval_s: float
    planned_seconds: float  # the schedule's time to 100 %
    aborted: int
    abort_interval: tuple[float, float]  # 95 % Clopper-Pearson for aborted / rollouts
    aborted_below_50: int  # aborted while the canary had less than 50 % of traffic
    below_50_interval: tuple[float, float]
    median_abort_s: float | None
    promoted: int
    median_promote_s: float | None
    max_promote_s: float | None
    unfinished: int
    abort_metrics: dict[str, int]

    @property
    def abort_rate(self) -> float:
        return self.aborted / self.rollouts

    @property
    def below_50_rate(self) -> float:
        return self.aborted_below_50 / self.rollouts

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(abort_rate=self.abort_rate, below_50_rate=self.below_50_rate)
        return data


def binomial_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) interval for a binomial proportion."""
    from scipy.stats import beta

    tail = (1.0 - confidence) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


def planned_seconds(policy: CanaryPolicy) -> float:
    """The schedule's time to 100 %: one step at the start weight and at each one above it."""
    s = policy.settings
    return s.step_seconds * (1 + sum(1 for w in s.steps if s.start_weight < w < 100))


def run_rollout(
    policy: CanaryPolicy, scenario: Scenario, interval_s: float, rng: np.random.Generator
) -> RolloutOutcome:
    """One rollout from start to promote, abort or the stall horizon."""
    horizon = HORIZON_FACTOR * planned_seconds(policy) + 10 * interval_s
    rates = np.array([scenario.stable_error_rate, scenario.canary_errors])
    log_medians = np.log([scenario.stable_median_ms, scenario.canary_median])
    mean_requests = scenario.rps * interval_s
    cap = scenario.latency_cap
    state = policy.start(0.0)
    now = 0.0
    while now < horizon:
        now += interval_s
        weight = state.weight
        total = rng.poisson(mean_requests)
        n_canary = rng.binomial(total, weight / 100.0)
        requests = np.array([total - n_canary, n_canary])
        errors = rng.binomial(requests, rates)
        sampled = np.minimum(requests - errors, cap)
        draws = rng.standard_normal(int(sampled.sum())) * scenario.latency_sigma
        lat_s = np.exp(draws[: sampled[0]] + log_medians[0])
        lat_c = np.exp(draws[sampled[0] :] + log_medians[1])
        feedback = [_feedback(scenario, arm, int(requests[arm] - errors[arm]), rng)
                    for arm in (0, 1)]  # fmt: skip
        state, decision = policy.observe(
            state,
            stable=ArmWindow(int(requests[0]), int(errors[0]), lat_s, **feedback[0]),
            canary=ArmWindow(int(requests[1]), int(errors[1]), lat_c, **feedback[1]),
            now=now,
        )
        if decision.action == ABORT:
            metric = next(c.metric for c in decision.checks if c.outcome == "worse")
            return RolloutOutcome(ABORT, now, weight, metric)
        if decision.action == PROMOTE:
            return RolloutOutcome(PROMOTE, now, weight)
    return RolloutOutcome(UNFINISHED, now, state.weight)


def _feedback(scenario: Scenario, arm: int, served: int, rng: np.random.Generator) -> dict:
    """One arm's labelled requests of one window: counts and (true, predicted) confusion."""
    if scenario.feedback_rate <= 0 or served <= 0:
        return {}
    labelled = int(rng.binomial(served, scenario.feedback_rate))
    recall = np.asarray(
        scenario.stable_recall if arm == 0 else scenario.canary_recall or scenario.stable_recall
    )
    truth = rng.multinomial(labelled, scenario.class_mix)
    right = rng.binomial(truth, recall)
    labels = scenario.labels
    k = len(labels)
    confusion: dict[tuple[str, str], int] = {}
    for i in range(k):
        if right[i]:
            confusion[(labels[i], labels[i])] = int(right[i])
        wrong = int(truth[i] - right[i])
        if wrong:
            spread = rng.multinomial(wrong, [1.0 / (k - 1)] * (k - 1))
            others = [j for j in range(k) if j != i]
            for j, n in zip(others, spread, strict=True):
                if n:
                    confusion[(labels[i], labels[j])] = int(n)
    return {"labelled": labelled, "correct": int(right.sum()), "confusion": confusion}


def simulate(
    config: DeploymentConfig, scenario: Scenario, rollouts: int, seed: int = 0
) -> OperatingCharacteristics:
    """``rollouts`` seeded rollouts of ``scenario`` under ``config``'s canary policy."""
    if not 1 <= rollouts <= 1_000_000:
        raise ValidationError(f"rollouts must lie between 1 and 1000000, got {rollouts}")
    policy = CanaryPolicy.from_config(config, labels=scenario.labels)
    interval = float(scenario.interval_s or config.canary.analysis_interval_s)
    rng = np.random.default_rng(seed)
    outcomes = [run_rollout(policy, scenario, interval, rng) for _ in range(rollouts)]
    aborts = [o for o in outcomes if o.action == ABORT]
    promotes = [o.seconds for o in outcomes if o.action == PROMOTE]
    below = sum(1 for o in aborts if o.weight < 50)
    metrics: dict[str, int] = {}
    for o in aborts:
        metrics[o.metric or "?"] = metrics.get(o.metric or "?", 0) + 1
    return OperatingCharacteristics(
        scenario=scenario,
        rollouts=rollouts,
        interval_s=interval,
        planned_seconds=planned_seconds(policy),
        aborted=len(aborts),
        abort_interval=binomial_interval(len(aborts), rollouts),
        aborted_below_50=below,
        below_50_interval=binomial_interval(below, rollouts),
        median_abort_s=float(np.median([o.seconds for o in aborts])) if aborts else None,
        promoted=len(promotes),
        median_promote_s=float(np.median(promotes)) if promotes else None,
        max_promote_s=max(promotes) if promotes else None,
        unfinished=sum(1 for o in outcomes if o.action == UNFINISHED),
        abort_metrics=metrics,
    )
