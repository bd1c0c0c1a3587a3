"""Keeps the hourly quality counts (data/quality_tables.py) in step with the prediction table.

Called inside the prediction log's own write transactions, so a count never disagrees with the
rows it summarises: ``add_predictions`` with the rows a flush inserted, ``move_to_labelled``
with the one prediction the first feedback claimed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.dialects import postgresql, sqlite

from data.quality_tables import DIMENSIONS, QualityConfidenceCount, QualityConfusionCount

BINS = 10
CONFUSION = QualityConfusionCount.__table__
CONFIDENCE = QualityConfidenceCount.__table__


def confidence_bin(confidence: float) -> int:
    """0..BINS-1 over [0, 1]; a confidence of exactly 1 falls in the top bin."""
    return min(BINS - 1, max(0, int(confidence * BINS)))


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _dims(row: Mapping[str, Any]) -> tuple:
    return (
        row["deployment_id"],
        row["model_ref"],
        row.get("experiment_id") or "",
        row.get("variant") or "",
        row.get("canary_id") or 0,
        row.get("canary_arm") or "",
        hour_of(row["at"]),
    )


def _upsert(session, table, keys: tuple[str, ...], rows: list[dict[str, Any]], sums: tuple):
    if not rows:
        return
    insert = (sqlite if session.bind.dialect.name == "sqlite" else postgresql).insert
    stmt = insert(table)
    values = {c: table.c[c] + stmt.excluded[c] for c in sums}
    if "label_delay_max_s" in table.c:  # feedback only ever adds, so the max is kept exactly
        values["label_delay_max_s"] = case(
            (
                stmt.excluded.label_delay_max_s > table.c.label_delay_max_s,
                stmt.excluded.label_delay_max_s,
            ),
            else_=table.c.label_delay_max_s,
        )
    session.execute(
        stmt.on_conflict_do_update(index_elements=[*DIMENSIONS, *keys], set_=values), rows
    )


def add_predictions(session, rows: Iterable[Mapping[str, Any]]) -> None:
    """One unlabelled count per prediction row (as the prediction log inserts them)."""
    confusion: Counter = Counter()
    confidence: Counter = Counter()
    confidence_sum: Counter = Counter()
    for row in rows:
        if row.get("confidence_bin") is None:
            continue
        dims = _dims(row)
        confusion[(*dims, row["predicted_class"])] += 1
        key = (*dims, row["confidence_bin"])
        confidence[key] += 1
        confidence_sum[key] += float(row["confidence"])
    _upsert(
        session,
        CONFUSION,
        ("predicted_class", "true_label"),
        [
            {
                **dict(zip(DIMENSIONS, k[:-1], strict=True)),
                "predicted_class": k[-1],
                "true_label": "",
                "n": n,
                "label_delay_sum_s": 0.0,
                "label_delay_max_s": 0.0,
            }
            for k, n in sorted(confusion.items())  # one lock order for every writer
        ],
        ("n",),
    )
    _upsert(
        session,
        CONFIDENCE,
        ("confidence_bin", "outcome"),
        [
            {
                **dict(zip(DIMENSIONS, k[:-1], strict=True)),
                "confidence_bin": k[-1],
                "outcome": "",
                "n": n,
                "confidence_sum": confidence_sum[k],
            }
            for k, n in sorted(confidence.items())
        ],
        ("n", "confidence_sum"),
    )


def move_to_labelled(session, row: Mapping[str, Any], true_label: str, delay_s: float) -> None:
    """The first feedback for ``row`` (a prediction's columns): out of its unlabelled cells,
    into the labelled ones."""
    if row.get("confidence_bin") is None:  # logged before quality counts existed
        return
    dims = dict(zip(DIMENSIONS, _dims(row), strict=True))
    where_dims = [CONFUSION.c[k] == v for k, v in dims.items()]
    session.execute(
        update(CONFUSION)
        .where(
            *where_dims,
            CONFUSION.c.predicted_class == row["predicted_class"],
            CONFUSION.c.true_label == "",
        )
        .values(n=CONFUSION.c.n - 1)
    )
    conf = float(row["confidence"])
    session.execute(
        update(CONFIDENCE)
        .where(
            *[CONFIDENCE.c[k] == v for k, v in dims.items()],
            CONFIDENCE.c.confidence_bin == row["confidence_bin"],
            CONFIDENCE.c.outcome == "",
        )
        .values(n=CONFIDENCE.c.n - 1, confidence_sum=CONFIDENCE.c.confidence_sum - conf)
    )
    _upsert(
        session,
        CONFUSION,
        ("predicted_class", "true_label"),
        [
            {
                **dims,
                "predicted_class": row["predicted_class"],
                "true_label": true_label,
                "n": 1,
                "label_delay_sum_s": delay_s,
                "label_delay_max_s": delay_s,
            }
        ],
        ("n", "label_delay_sum_s"),
    )
    _upsert(
        session,
        CONFIDENCE,
        ("confidence_bin", "outcome"),
        [
            {
                **dims,
                "confidence_bin": row["confidence_bin"],
                "outcome": "correct" if row["predicted_class"] == true_label else "wrong",
                "n": 1,
                "confidence_sum": conf,
            }
        ],
        ("n", "confidence_sum"),
    )


def rebuild(session) -> None:
    """Recompute every count from the prediction table in two INSERT ... SELECT ... GROUP BY
    statements: a repair after a manual edit of the table, and a fast bulk load for benchmarks.
    Equal to what the incremental path keeps (tests/core/quality/test_quality_store.py)."""
    from sqlalchemy import delete, func, literal, select

    from data.deployment_tables import PredictionRow

    p = PredictionRow.__table__
    if session.bind.dialect.name == "sqlite":
        hour = func.strftime("%Y-%m-%d %H:00:00.000000", p.c.at)
    else:
        # Truncate in UTC whatever the session's time zone, as hour_of() does in Python.
        hour = func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", p.c.at)))
    dims = [
        p.c.deployment_id,
        p.c.model_ref,
        func.coalesce(p.c.experiment_id, ""),
        func.coalesce(p.c.variant, ""),
        func.coalesce(p.c.canary_id, 0),
        func.coalesce(p.c.canary_arm, ""),
        hour,
    ]
    true = func.coalesce(p.c.true_label, "")
    outcome = case(
        (p.c.true_label.is_(None), ""),
        (p.c.true_label == p.c.predicted_class, "correct"),
        else_="wrong",
    )
    logged = p.c.confidence_bin.is_not(None)
    session.execute(delete(CONFUSION))
    session.execute(delete(CONFIDENCE))
    session.execute(
        CONFUSION.insert().from_select(
            [*DIMENSIONS, "predicted_class", "true_label", "n", "label_delay_sum_s",
             "label_delay_max_s"],
            select(
                *dims, p.c.predicted_class, true, func.count(),
                func.coalesce(func.sum(p.c.label_delay_s), literal(0.0)),
                func.coalesce(func.max(p.c.label_delay_s), literal(0.0)),
            ).where(logged).group_by(*dims, p.c.predicted_class, true),
        )
    )  # fmt: skip
    # Unlabelled confidences are summed too; calibration reads only the labelled outcomes.
    session.execute(
        CONFIDENCE.insert().from_select(
            [*DIMENSIONS, "confidence_bin", "outcome", "n", "confidence_sum"],
            select(*dims, p.c.confidence_bin, outcome, func.count(), func.sum(p.c.confidence))
            .where(logged)
            .group_by(*dims, p.c.confidence_bin, outcome),
        )
    )
