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
