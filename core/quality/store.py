"""The SQL side of quality: sums of the hourly counts, plus the raw predictions of the one
partial hour at the start of a rolling window, so a window is exact to the second and costs
a GROUP BY over a few hundred count rows and at most an hour of predictions.

Everything returned is counts keyed by a group (a version, an experiment variant or a canary
arm); the statistics are computed from them by the pure modules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from core.events import emit
from core.quality.rollup import BINS, CONFIDENCE, CONFUSION, hour_of
from data.database import Database
from data.deployment_tables import PredictionRow
from data.quality_tables import QualityDriftAlarm
from data.types import utcnow

PREDICTION = PredictionRow.__table__
GROUPS = ("model_ref", "variant", "canary_arm")
REFERENCE_HOURS = 3  # a version's first hours in production are its drift reference


@dataclass(frozen=True)
class Scope:
    """Which predictions: any combination of filters, split into groups by ``split_by``."""

    deployment_id: str | None = None
    model_ref: str | None = None
    experiment_id: str | None = None
    canary_id: int | None = None
    split_by: str = "model_ref"

    def __post_init__(self) -> None:
        if self.split_by not in GROUPS:
            raise ValueError(f"split_by must be one of {', '.join(GROUPS)}")
        if self.deployment_id is None and self.experiment_id is None:
            raise ValueError("a scope needs a deployment or an experiment")


@dataclass
class GroupCounts:
    """Sufficient counts of one group: everything quality and calibration need."""

    predictions: int = 0
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)  # (true, predicted)
    predicted: dict[str, int] = field(default_factory=dict)  # all predictions, labelled or not
    bins_all: list[int] = field(default_factory=lambda: [0] * BINS)
    bins_labelled: list[int] = field(default_factory=lambda: [0] * BINS)
    bins_confidence_sum: list[float] = field(default_factory=lambda: [0.0] * BINS)
    bins_correct: list[int] = field(default_factory=lambda: [0] * BINS)
    delay_sum_s: float = 0.0
    delay_max_s: float | None = None

    @property
    def labelled(self) -> int:
        return sum(self.confusion.values())


def _filters(table, scope: Scope, since: datetime | None, time_col: str) -> list:
    where = []
    for name in ("deployment_id", "model_ref", "experiment_id", "canary_id"):
        value = getattr(scope, name)
        if value is not None:
            where.append(table.c[name] == value)
    if since is not None:
        where.append(table.c[time_col] >= since)
    return where


def _group_key(value) -> str:
    return "" if value is None else str(value)


class QualityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def counts(self, scope: Scope, since: datetime | None = None) -> dict[str, GroupCounts]:
        """Counts per group over [since, now], or all-time when ``since`` is None."""
        edge = None
        if since is not None:
            edge = hour_of(since)
            if edge < since:
                edge += timedelta(hours=1)  # the count rows from here on are whole hours
        groups: dict[str, GroupCounts] = defaultdict(GroupCounts)
        key = scope.split_by
        with self.db.session() as session:
            rows = session.execute(
                select(
                    CONFUSION.c[key],
                    CONFUSION.c.predicted_class,
                    CONFUSION.c.true_label,
                    func.sum(CONFUSION.c.n),
                    func.sum(CONFUSION.c.label_delay_sum_s),
                    func.max(CONFUSION.c.label_delay_max_s),
                )
                .where(*_filters(CONFUSION, scope, edge, "hour"))
                .group_by(CONFUSION.c[key], CONFUSION.c.predicted_class, CONFUSION.c.true_label)
            ).all()
            bins = session.execute(
                select(
                    CONFIDENCE.c[key],
                    CONFIDENCE.c.confidence_bin,
                    CONFIDENCE.c.outcome,
                    func.sum(CONFIDENCE.c.n),
                    func.sum(CONFIDENCE.c.confidence_sum),
                )
                .where(*_filters(CONFIDENCE, scope, edge, "hour"))
                .group_by(CONFIDENCE.c[key], CONFIDENCE.c.confidence_bin, CONFIDENCE.c.outcome)
            ).all()
            if since is not None and since < edge:
                rows += self._edge_confusion(session, scope, since, edge)
                bins += self._edge_bins(session, scope, since, edge)
        for group, predicted, true, n, delay_sum, delay_max in rows:
            g = groups[_group_key(group)]
            n = int(n or 0)
            g.predictions += n
            g.predicted[predicted] = g.predicted.get(predicted, 0) + n
            if true and n:
                g.confusion[(true, predicted)] = g.confusion.get((true, predicted), 0) + n
                g.delay_sum_s += float(delay_sum or 0.0)
                g.delay_max_s = max(g.delay_max_s or 0.0, float(delay_max or 0.0))
        for group, b, outcome, n, conf_sum in bins:
            g = groups[_group_key(group)]
            n = int(n or 0)
            g.bins_all[b] += n
            if outcome:
                g.bins_labelled[b] += n
                g.bins_confidence_sum[b] += float(conf_sum or 0.0)
                if outcome == "correct":
                    g.bins_correct[b] += n
        return {k: v for k, v in groups.items() if v.predictions > 0}

    def _edge_confusion(self, session, scope: Scope, since: datetime, edge: datetime) -> list:
        p = PREDICTION
        true = func.coalesce(p.c.true_label, "")
        return session.execute(
            select(
                p.c[scope.split_by],
                p.c.predicted_class,
                true,
                func.count(),
                func.sum(p.c.label_delay_s),
                func.max(p.c.label_delay_s),
            )
            .where(*_filters(p, scope, since, "at"), p.c.at < edge, p.c.confidence_bin.is_not(None))
            .group_by(p.c[scope.split_by], p.c.predicted_class, true)
        ).all()

    def _edge_bins(self, session, scope: Scope, since: datetime, edge: datetime) -> list:
        p = PREDICTION
        outcome = case(
            (p.c.true_label.is_(None), ""),
            (p.c.true_label == p.c.predicted_class, "correct"),
            else_="wrong",
        )
        # Only labelled rows' confidences enter calibration; the unlabelled sum is not used.
        return session.execute(
            select(
                p.c[scope.split_by],
                p.c.confidence_bin,
                outcome,
                func.count(),
                func.sum(p.c.confidence),
            )
            .where(*_filters(p, scope, since, "at"), p.c.at < edge, p.c.confidence_bin.is_not(None))
            .group_by(p.c[scope.split_by], p.c.confidence_bin, outcome)
        ).all()

    def hourly_totals(self, deployment_id: str, model_ref: str) -> list[tuple[datetime, int]]:
        """(hour, predictions) for a version in a deployment, oldest first."""
        c = CONFIDENCE
        with self.db.session() as session:
            rows = session.execute(
                select(c.c.hour, func.sum(c.c.n))
                .where(c.c.deployment_id == deployment_id, c.c.model_ref == model_ref)
                .group_by(c.c.hour)
                .order_by(c.c.hour)
            ).all()
        return [(hour, int(n)) for hour, n in rows]

    def hours_counts(
        self, deployment_id: str, model_ref: str, start: datetime, end: datetime
    ) -> GroupCounts:
        """Counts of one version over whole hours [start, end): a drift reference or window."""
        scope = Scope(deployment_id=deployment_id, model_ref=model_ref)
        with self.db.session() as session:
            classes = session.execute(
                select(CONFUSION.c.predicted_class, func.sum(CONFUSION.c.n))
                .where(*_filters(CONFUSION, scope, start, "hour"), CONFUSION.c.hour < end)
                .group_by(CONFUSION.c.predicted_class)
            ).all()
            bins = session.execute(
                select(CONFIDENCE.c.confidence_bin, func.sum(CONFIDENCE.c.n))
                .where(*_filters(CONFIDENCE, scope, start, "hour"), CONFIDENCE.c.hour < end)
                .group_by(CONFIDENCE.c.confidence_bin)
            ).all()
        g = GroupCounts()
        for predicted, n in classes:
            g.predicted[predicted] = int(n)
            g.predictions += int(n)
        for b, n in bins:
            g.bins_all[b] = int(n)
        return g

    def registered_reference(self, model_ref: str) -> GroupCounts | None:
        """The version's held-out predictions stored at registration (class counts and
        confidence histogram), or None when it was registered without them."""
        from data.tables import ModelVersionRow

        if ":" not in model_ref:
            return None
        model_id, version = model_ref.rsplit(":", 1)
        with self.db.session() as session:
            config = session.execute(
                select(ModelVersionRow.training_config).where(
                    ModelVersionRow.model_id == model_id, ModelVersionRow.version == version
                )
            ).scalar()
        ref = (config or {}).get("held_out_reference") or {}
        predicted, bins = ref.get("predicted"), ref.get("confidence_bins")
        if not isinstance(predicted, dict) or not isinstance(bins, list) or len(bins) != BINS:
            return None
        g = GroupCounts()
        g.predicted = {str(k): int(v) for k, v in predicted.items()}
        g.predictions = sum(g.predicted.values())
        g.bins_all = [int(n) for n in bins]
        return g if g.predictions > 0 else None

    def labels_of(self, model_ref: str) -> list[str]:
        """The version's label set in its model's order: from the registry, else from a logged
        prediction (ensembles and unregistered refs)."""
        from data.tables import ModelVersionRow

        with self.db.session() as session:
            if ":" in model_ref:
                model_id, version = model_ref.rsplit(":", 1)
                config = session.execute(
                    select(ModelVersionRow.training_config).where(
                        ModelVersionRow.model_id == model_id, ModelVersionRow.version == version
                    )
                ).scalar()
                if config and config.get("labels"):
                    return list(config["labels"])
            labels = session.execute(
                select(PREDICTION.c.labels).where(PREDICTION.c.model_ref == model_ref).limit(1)
            ).scalar()
        return list(labels or [])

    def labels_in(self, scope: Scope, group: str) -> list[str]:
        """The label set of a group that is not a version (a variant, a canary arm), from one
        of its logged predictions."""
        p = PREDICTION
        with self.db.session() as session:
            labels = session.execute(
                select(p.c.labels)
                .where(*_filters(p, scope, None, "at"), p.c[scope.split_by] == group)
                .limit(1)
            ).scalar()
        return list(labels or [])

    def record_alarm(
        self, deployment_id: str, model_ref: str, hour: datetime, p_mix, p_conf, message: str
    ) -> bool:
        """Record a drift alarm once per (deployment, version, hour), with its event in the same
        transaction; True when this call was the first."""
        t = QualityDriftAlarm.__table__
        ins = (sqlite if self.db.is_sqlite else postgresql).insert
        row = {
            "deployment_id": deployment_id,
            "model_ref": model_ref,
            "hour": hour,
            "p_class_mix": p_mix,
            "p_confidence": p_conf,
            "at": utcnow(),
        }
        with self.db.write() as session:
            first = session.execute(
                ins(t)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["deployment_id", "model_ref", "hour"])
                .returning(t.c.id)
            ).scalar()
            if first is not None:
                emit(
                    "prediction_drift",
                    message,
                    source=deployment_id,
                    severity="warning",
                    data={**row, "hour": hour.isoformat(), "at": row["at"].isoformat()},
                    session=session,
                )
        return first is not None

    def alarm_hours(self, deployment_id: str, model_ref: str) -> list[datetime]:
        t = QualityDriftAlarm.__table__
        with self.db.session() as session:
            return list(
                session.execute(
                    select(t.c.hour)
                    .where(t.c.deployment_id == deployment_id, t.c.model_ref == model_ref)
                    .order_by(t.c.hour)
                ).scalars()
            )
