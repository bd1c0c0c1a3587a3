"""A typed view of ``analyze_experiment``'s result, for the faces that render it.

The dict stays the contract (the seed's keys, the JSON of ``GET /experiments/{id}/analysis`` and
``nightscan experiment analyze --json``); ``AnalysisView.from_dict`` reads it once, at the edge,
so the CLI and the console render fields, not string keys, and agree on what a state means:
an ended experiment needs no more units, and an empty one has no data yet rather than tests.
Pure: no statistics, no database (the console builds it from a dict that came over HTTP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENDED = ("stopped", "completed")


def _interval(found: Any) -> tuple[float | None, float | None] | None:
    if not found:
        return None
    low, high = found
    return (low, high)


@dataclass(frozen=True)
class MetricResult:
    """One metric of one treatment against the control."""

    metric: str
    metric_type: str  # "binary" or "continuous"
    higher_is_better: bool
    primary: bool
    control_mean: float | None
    treatment_mean: float | None
    control_n: int
    treatment_n: int
    relative_lift: float | None  # (treatment - control) / control, as measured
    relative_lift_ci: tuple[float | None, float | None] | None
    improvement_percent: float  # direction-aware: positive means the treatment is better
    p_value: float | None
    p_value_adjusted: float | None  # Holm, fixed-horizon
    always_valid_p: float | None  # mSPRT, Holm-adjusted where given
    significant: bool
    winner: str | None
    note: str | None
    difference: float | None = None  # treatment - control, absolute
    difference_ci: tuple[float | None, float | None] | None = None
    test: str | None = None

    @property
    def counted(self) -> bool:
        """An F1 metric: from the arms' confusion counts with a bootstrap interval, shown and
        never decisive (no anytime p)."""
        return self.metric_type == "f1"

    @property
    def binary(self) -> bool:
        return self.metric_type == "binary"

    @property
    def has_data(self) -> bool:
        return self.control_n > 0 and self.treatment_n > 0

    @property
    def improvement(self) -> float | None:
        """The relative change, signed by direction: positive means the treatment is better
        (a lower latency too), as the registry's ``percentage_improvement`` is signed."""
        if self.relative_lift is None:
            return None
        return self.relative_lift if self.higher_is_better else -self.relative_lift

    @property
    def improvement_ci(self) -> tuple[float | None, float | None] | None:
        """The interval of ``improvement`` (the lift's interval, mirrored when lower is better)."""
        ci = self.relative_lift_ci
        if ci is None or self.higher_is_better:
            return ci
        low, high = ci
        return (None if high is None else -high, None if low is None else -low)

    @classmethod
    def from_dict(cls, metric: str, d: dict[str, Any]) -> MetricResult:
        seq = d.get("sequential") or {}
        return cls(
            metric=metric,
            metric_type=d["metric_type"],
            higher_is_better=bool(d["higher_is_better"]),
            primary=bool(d.get("primary")),
            control_mean=d.get("control_mean"),
            treatment_mean=d.get("treatment_mean"),
            control_n=int(d.get("control_n") or 0),
            treatment_n=int(d.get("treatment_n") or 0),
            relative_lift=d.get("relative_lift"),
            relative_lift_ci=_interval(d.get("relative_lift_ci")),
            improvement_percent=float(d.get("improvement_percent") or 0.0),
            p_value=d.get("p_value"),
            p_value_adjusted=d.get("p_value_adjusted"),
            always_valid_p=seq.get("always_valid_p_adjusted", seq.get("always_valid_p")),
            significant=bool(d.get("significant")),
            winner=d.get("winner"),
            note=d.get("note"),
            difference=d.get("absolute_difference"),
            difference_ci=_interval(d.get("difference_ci")),
            test=d.get("test"),
        )


@dataclass(frozen=True)
class Comparison:
    key: str  # "treatment_vs_control"
    control: str
    treatment: str
    metrics: tuple[MetricResult, ...]

    @property
    def title(self) -> str:
        return f"{self.treatment} vs {self.control}"


@dataclass(frozen=True)
class VariantResult:
    name: str
    model: str
    allocation_percent: float
    units: int
    n: dict[str, int]  # observations per metric


@dataclass(frozen=True)
class SampleRatio:
    mismatch: bool
    verdict: str
    p_value: float | None
    expected: dict[str, float]


@dataclass(frozen=True)
class Power:
    comparison: str
    metric: str
    available: bool
    note: str
    achieved_power: float | None = None
    target_power: float | None = None
    mde_relative: float | None = None
    remaining_total: int = 0
    fraction_complete: float | None = None


@dataclass(frozen=True)
class Recommendation:
    action: str  # keep_running, stop_winner, stop_no_difference, stop_inconclusive, invalid
    winner: str | None
    reason: str


@dataclass(frozen=True)
class AnalysisView:
    experiment_id: str
    status: str
    primary_metric: str
    minimum_sample_size: int
    duration_hours: float
    analyzed_at: str
    variants: tuple[VariantResult, ...]
    comparisons: tuple[Comparison, ...]
    srm: SampleRatio
    power: tuple[Power, ...]
    recommendation: Recommendation
    trustworthy: bool
    trust_notes: tuple[str, ...]

    @property
    def ended(self) -> bool:
        """Stopped or completed: more units will never come, so none are "needed"."""
        return self.status in ENDED

    @property
    def total_units(self) -> int:
        return sum(v.units for v in self.variants)

    @property
    def has_data(self) -> bool:
        """Whether any unit has been assigned; without one, tests have nothing to say."""
        return self.total_units > 0

    def power_line(self, p: Power) -> str:
        """What the power block says, in words both faces print."""
        label = p.comparison.replace("_vs_", " vs ")
        if not self.has_data:
            return f"{label}: no data yet"
        if not p.available:
            return f"{label}: power not available yet ({p.note})"
        assert p.achieved_power is not None and p.target_power is not None
        said = (
            f"{label}: power {p.achieved_power:.0%} (target {p.target_power:.0%}) to detect "
            f"{p.mde_relative or 0:.0%} on {p.metric}"
        )
        if self.ended:
            return said + " (ended)"
        if p.remaining_total <= 0:
            return said + "; enough units for full power"
        return (
            f"{said}; {p.remaining_total:,} more units needed "
            f"({p.fraction_complete or 0:.0%} complete)"
        )

    @property
    def srm_line(self) -> str:
        return self.srm.verdict if self.has_data else "sample ratio: no data yet"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnalysisView:
        meta = d.get("experiment_metadata") or {}
        srm = d["srm"]
        rec = d["recommendation"]
        return cls(
            experiment_id=d["experiment_id"],
            status=str(meta.get("status", "")),
            primary_metric=str(meta.get("primary_metric", "")),
            minimum_sample_size=int(meta.get("minimum_sample_size") or 0),
            duration_hours=float(d.get("duration_hours") or 0.0),
            analyzed_at=str(d.get("analyzed_at", "")),
            variants=tuple(
                VariantResult(
                    name=name,
                    model=v["model"],
                    allocation_percent=float(v["allocation_percent"]),
                    units=int(v["units"]),
                    n={m: int(s.get("n", 0)) for m, s in v.get("metrics", {}).items()},
                )
                for name, v in d["variants"].items()
            ),
            comparisons=tuple(
                Comparison(
                    key=key,
                    control=c["control"],
                    treatment=c["treatment"],
                    metrics=tuple(
                        MetricResult.from_dict(m, r) for m, r in c["metric_comparisons"].items()
                    ),
                )
                for key, c in d["comparisons"].items()
            ),
            srm=SampleRatio(
                mismatch=bool(srm["mismatch"]),
                verdict=str(srm["verdict"]),
                p_value=srm.get("p_value"),
                expected={k: float(v) for k, v in (srm.get("expected") or {}).items()},
            ),
            power=tuple(
                Power(
                    comparison=key,
                    metric=str(p.get("metric", "")),
                    available=bool(p.get("available")),
                    note=str(p.get("note", "")),
                    achieved_power=p.get("achieved_power"),
                    target_power=p.get("target_power"),
                    mde_relative=p.get("mde_relative"),
                    remaining_total=int((p.get("remaining") or {}).get("total", 0)),
                    fraction_complete=p.get("fraction_complete"),
                )
                for key, p in d["power"].items()
            ),
            recommendation=Recommendation(
                action=str(rec["action"]), winner=rec.get("winner"), reason=str(rec["reason"])
            ),
            trustworthy=bool(d.get("trustworthy", True)),
            trust_notes=tuple(d.get("trust_notes") or ()),
        )
