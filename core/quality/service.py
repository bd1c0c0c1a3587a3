"""The front door of quality: a report per version (or experiment variant, or canary arm) over
a rolling window or all-time, and the drift look for the last completed hour. The CLI, the
HTTP route, the console and /metrics all call ``QualityService``; none of them computes."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.errors import NotFoundError, ValidationError
from core.quality.calibration import BinCounts, Calibration, calibration_from_bins
from core.quality.drift import DriftVerdict, drift_verdict
from core.quality.metrics import Interval, QualityMetrics, quality_from_confusion, wilson
from core.quality.rollup import hour_of
from core.quality.store import REFERENCE_HOURS, GroupCounts, QualityStore, Scope
from data.database import Database
from data.types import utcnow

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_window(text: str | None) -> timedelta | None:
    """'90s', '30m', '1h', '7d', '2w' -> a timedelta; None or 'all' -> all-time."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not match or float(match[1]) <= 0:
        raise ValidationError(
            f"invalid window {text!r}; use a positive number with s, m, h, d or w "
            "(e.g. 30m, 1h, 7d) or 'all'"
        )
    try:
        return timedelta(seconds=float(match[1]) * UNITS[match[2]])
    except OverflowError:
        raise ValidationError(f"window {text!r} is longer than any history") from None


@dataclass(frozen=True)
class LabelCoverage:
    predictions: int
    labelled: int
    coverage: float | None
    coverage_ci: Interval | None
    mean_delay_s: float | None
    max_delay_s: float | None


REFERENCE_HELD_OUT = "held-out predictions at registration"
REFERENCE_FIRST_HOURS = f"first {REFERENCE_HOURS} hours in production"


@dataclass(frozen=True)
class DriftStatus:
    reference_start: datetime | None  # the production hours of the reference (None: held-out)
    reference_end: datetime | None
    window_start: datetime | None  # the last completed clock hour
    verdict: DriftVerdict | None
    alarms: int  # hours of this version that have drifted so far
    # What the hour is compared with: REFERENCE_HELD_OUT when the version was registered with
    # its held-out predictions, else REFERENCE_FIRST_HOURS.
    reference: str = REFERENCE_FIRST_HOURS


@dataclass(frozen=True)
class GroupQuality:
    group: str  # a version (model_ref), an experiment variant or a canary arm
    coverage: LabelCoverage
    quality: QualityMetrics
    calibration: Calibration
    predicted_mix: dict[str, int]
    drift: DriftStatus | None


@dataclass(frozen=True)
class QualityReport:
    scope: Scope
    since: datetime | None  # None: all-time
    generated_at: datetime
    groups: tuple[GroupQuality, ...]

    def group(self, name: str) -> GroupQuality:
        for g in self.groups:
            if g.group == name:
                return g
        raise NotFoundError(f"no predictions for {name!r} in this scope")


def _labels(known: list[str], counts: GroupCounts) -> list[str]:
    seen = set(counts.predicted) | {t for t, _ in counts.confusion}
    return known + sorted(seen - set(known))


def group_quality(
    name: str, counts: GroupCounts, labels: list[str], drift: DriftStatus | None = None
) -> GroupQuality:
    """Every number for one group, from its counts."""
    labels = _labels(labels, counts)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (true, predicted), n in counts.confusion.items():
        matrix[index[true]][index[predicted]] += n
    labelled = counts.labelled
    coverage = LabelCoverage(
        predictions=counts.predictions,
        labelled=labelled,
        coverage=labelled / counts.predictions if counts.predictions else None,
        coverage_ci=wilson(labelled, counts.predictions),
        mean_delay_s=counts.delay_sum_s / labelled if labelled else None,
        max_delay_s=counts.delay_max_s if labelled else None,
    )
    bins = [
        BinCounts(n, s, c)
        for n, s, c in zip(
            counts.bins_labelled, counts.bins_confidence_sum, counts.bins_correct, strict=True
        )
    ]
    return GroupQuality(
        group=name,
        coverage=coverage,
        quality=quality_from_confusion(labels, matrix),
        calibration=calibration_from_bins(bins),
        predicted_mix={label: counts.predicted.get(label, 0) for label in labels},
        drift=drift,
    )


class QualityService:
    def __init__(self, db: Database) -> None:
        self.store = QualityStore(db)

    def report(
        self,
        scope: Scope,
        window: timedelta | None = None,
        *,
        now: datetime | None = None,
        drift: bool = True,
    ) -> QualityReport:
        now = now or utcnow()
        since = now - window if window is not None else None
        counts = self.store.counts(scope, since)
        groups = []
        for name in sorted(counts):
            if scope.split_by == "model_ref":
                labels = self.store.labels_of(name)
            else:
                labels = self.store.labels_in(scope, name)
            look = None
            if drift and scope.split_by == "model_ref" and scope.deployment_id is not None:
                look = self.drift(scope.deployment_id, name, now=now)
            groups.append(group_quality(name, counts[name], labels, look))
        return QualityReport(scope, since, now, tuple(groups))

    def drift(self, deployment_id: str, model_ref: str, *, now: datetime | None = None):
        """The look at the last completed hour against the version's reference: its held-out
        predictions stored at registration when it has them, else its first hours in this
        deployment. An alarm is recorded (and its event emitted) once, by whoever looks first."""
        now = now or utcnow()
        hours = self.store.hourly_totals(deployment_id, model_ref)
        held_out = self.store.registered_reference(model_ref)
        kind = REFERENCE_FIRST_HOURS if held_out is None else REFERENCE_HELD_OUT
        if not hours:
            return DriftStatus(None, None, None, None, 0, kind)
        window = hour_of(now) - timedelta(hours=1)
        alarms = len(self.store.alarm_hours(deployment_id, model_ref))
        if held_out is not None:
            ref_start = ref_end = None
            if window < hours[0][0]:  # nothing served in a completed hour yet
                return DriftStatus(None, None, None, None, alarms, kind)
            ref = held_out
        else:
            ref_start = hours[0][0]
            ref_end = ref_start + timedelta(hours=REFERENCE_HOURS)
            if window < ref_end:
                return DriftStatus(ref_start, ref_end, None, None, alarms, kind)
            ref = self.store.hours_counts(deployment_id, model_ref, ref_start, ref_end)
        win = self.store.hours_counts(deployment_id, model_ref, window, window + timedelta(hours=1))
        classes = sorted(set(ref.predicted) | set(win.predicted))
        verdict = drift_verdict(
            [ref.predicted.get(c, 0) for c in classes],
            [win.predicted.get(c, 0) for c in classes],
            ref.bins_all,
            win.bins_all,
        )
        if verdict.alarm:
            mix, conf = verdict.class_mix, verdict.confidence
            first = self.store.record_alarm(
                deployment_id,
                model_ref,
                window,
                mix.p_value if mix else None,
                conf.p_value if conf else None,
                f"{model_ref} in {deployment_id}: {verdict.reason} in the hour from "
                f"{window:%Y-%m-%d %H:%M} UTC (p = {verdict.p_value:.2g}, "
                f"alpha = {verdict.alpha:.2g} per test; reference: {kind})",
            )
            alarms += int(first)
        return DriftStatus(ref_start, ref_end, window, verdict, alarms, kind)


def quality_for_deployment(
    db: Database, deployment_id: str, version: str | None, window: timedelta | None
) -> QualityReport:
    """The report every face shows for ``nightscan quality DEPLOYMENT [--version V]``: an
    unknown deployment is a NotFoundError; ``version`` is a version or MODEL:VERSION."""
    from data.deployment_tables import DeploymentRow

    with db.session() as session:
        row = session.get(DeploymentRow, deployment_id)
        model_id = row.model_id if row is not None else None
    if model_id is None:
        raise NotFoundError(f"deployment {deployment_id!r} not found")
    model_ref = None
    if version is not None:
        model_ref = version if ":" in version else f"{model_id}:{version}"
    return QualityService(db).report(
        Scope(deployment_id=deployment_id, model_ref=model_ref), window
    )


def quality_for_experiment(
    db: Database, experiment_id: str, window: timedelta | None
) -> QualityReport:
    """Per variant of an A/B experiment (its predictions are not a deployment's)."""
    from data.experiment_tables import ExperimentRow

    with db.session() as session:
        if session.get(ExperimentRow, experiment_id) is None:
            raise NotFoundError(f"experiment {experiment_id!r} not found")
    scope = Scope(experiment_id=experiment_id, split_by="variant")
    return QualityService(db).report(scope, window, drift=False)


def jsonable(value: Any) -> Any:
    """A report as plain JSON types (datetimes as ISO 8601, NaN as null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in ("micro_f1", "micro_f1_ci", "p_value"):
            if hasattr(type(value), name):
                out[name] = jsonable(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
