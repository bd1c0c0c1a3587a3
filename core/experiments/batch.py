"""The SQL of one group commit: units, raw results and sufficient statistics, in one order.

1. units: ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` one row per new request (its variant
   and the allocation version in force), and +1 on ``experiment_unit_count`` for each row that
   was actually inserted; a result whose variant disagrees with its request's stored variant is
   refused (``ConflictError``) and nothing of it is written.
2. results: ``INSERT ... ON CONFLICT (experiment_id, request_id, metric) DO NOTHING RETURNING``;
   a re-sent result is a no-op, not an error.
3. sufficient statistics: n, sum and sum of squares per variant and metric are upserted from
   exactly the rows step 2 returned, so nothing is ever double counted.

Rows are written in one global order (table, then key) so concurrent PostgreSQL writers cannot
deadlock on each other's keys. Statements are built once per dialect.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from core.errors import ConflictError, NotFoundError
from data.experiment_tables import (
    ExperimentMetricStatsRow,
    ExperimentResultRow,
    ExperimentRow,
    ExperimentUnitCountRow,
    ExperimentUnitRow,
)
from data.types import UTCDateTime

_CHUNK = 500  # keys per IN (...) query

EXPERIMENT = ExperimentRow.__table__
UNIT = ExperimentUnitRow.__table__
UNIT_COUNT = ExperimentUnitCountRow.__table__
RESULT = ExperimentResultRow.__table__
STATS = ExperimentMetricStatsRow.__table__


@dataclass(frozen=True)
class ResultItem:
    """One validated call: a request's values for some of the experiment's metrics."""

    experiment_id: str
    request_id: str
    variant: str
    metrics: dict[str, float]


Outcome = int | Exception  # newly stored metric values, or why the item was refused


@functools.cache
def _statements(dialect_name: str) -> dict[str, Any]:
    """The batch's statements, built once per dialect (the compiled cache then always hits)."""
    insert = (postgresql if dialect_name == "postgresql" else sqlite).insert
    stats, counts = insert(STATS), insert(UNIT_COUNT)
    return {
        "state": select(
            EXPERIMENT.c.experiment_id, EXPERIMENT.c.status, EXPERIMENT.c.allocation_version
        ).where(EXPERIMENT.c.experiment_id.in_(bindparam("ids", expanding=True))),
        # Timestamps are bound pre-converted (one conversion per batch, not per row).
        "units": insert(UNIT)
        .values(first_seen_at=bindparam("at", type_=_Raw()))
        .on_conflict_do_nothing(index_elements=["experiment_id", "request_id"])
        .returning(UNIT.c.experiment_id, UNIT.c.request_id, UNIT.c.variant),
        "results": insert(RESULT)
        .values(recorded_at=bindparam("at", type_=_Raw()))
        .on_conflict_do_nothing(index_elements=["experiment_id", "request_id", "metric"])
        .returning(RESULT.c.experiment_id, RESULT.c.request_id, RESULT.c.metric),
        "stats": stats.on_conflict_do_update(
            index_elements=["experiment_id", "variant", "metric"],
            set_={
                "n": STATS.c.n + stats.excluded.n,
                "sum": STATS.c.sum + stats.excluded.sum,
                "sum_sq": STATS.c.sum_sq + stats.excluded.sum_sq,
            },
        ),
        "counts": counts.on_conflict_do_update(
            index_elements=["experiment_id", "variant", "allocation_version"],
            set_={"n": UNIT_COUNT.c.n + counts.excluded.n},
        ),
    }


class _Raw(TypeDecorator):
    """A timestamp already converted for the driver: no per-row bind processing."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Any) -> None:
        return None


def _db_time(conn: Any, now: datetime) -> Any:
    """``now`` as the driver wants it for a UTCDateTime column."""
    process = UTCDateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(now) if process else now


def _chunks(seq: list, size: int = _CHUNK) -> Iterable[list]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def write_batch(conn: Any, items: list[ResultItem], now: datetime) -> list[Outcome]:
    outcomes: list[Outcome] = [0] * len(items)
    exp_ids = sorted({it.experiment_id for it in items})
    sql = _statements(conn.dialect.name)
    at = _db_time(conn, now)
    state = {r[0]: (r[1], r[2]) for r in conn.execute(sql["state"], {"ids": exp_ids})}
    # The first item of a request in this batch proposes its variant.
    proposed: dict[tuple[str, str], str] = {}
    for i, it in enumerate(items):
        status = state.get(it.experiment_id, ("missing", 0))[0]
        if status == "missing":
            outcomes[i] = NotFoundError(f"experiment {it.experiment_id} does not exist")
        elif status == "draft":
            outcomes[i] = ConflictError(
                f"experiment {it.experiment_id} is DRAFT; start it before recording results"
            )
        else:
            proposed.setdefault((it.experiment_id, it.request_id), it.variant)

    stored = _units(conn, proposed, state, at)
    accepted: dict[tuple[str, str, str], int] = {}  # (exp, request, metric) -> item index
    for i, it in enumerate(items):
        if isinstance(outcomes[i], Exception):
            continue
        unit_variant = stored.get((it.experiment_id, it.request_id))
        if unit_variant is None:
            outcomes[i] = ConflictError(
                f"experiment {it.experiment_id} has ended; only late results for requests it "
                f"already saw are accepted, and {it.request_id!r} is new"
            )
        elif unit_variant != it.variant:
            outcomes[i] = ConflictError(
                f"request {it.request_id!r} of {it.experiment_id} was recorded under variant "
                f"{unit_variant!r}, not {it.variant!r}; nothing written"
            )
        else:
            for metric in it.metrics:
                accepted.setdefault((it.experiment_id, it.request_id, metric), i)
    if not accepted:
        return outcomes

    rows = [
        {
            "experiment_id": exp,
            "request_id": req,
            "metric": metric,
            "variant": items[i].variant,
            "value": items[i].metrics[metric],
            "at": at,
        }
        for (exp, req, metric), i in sorted(accepted.items())
    ]
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for exp, req, metric in conn.execute(sql["results"], rows):
        i = accepted[(exp, req, metric)]
        value = items[i].metrics[metric]
        acc = sums[(exp, items[i].variant, metric)]
        acc[0] += 1
        acc[1] += value
        acc[2] += value * value
        outcomes[i] += 1
    if sums:
        conn.execute(
            sql["stats"],
            [
                {
                    "experiment_id": e,
                    "variant": v,
                    "metric": m,
                    "n": a[0],
                    "sum": a[1],
                    "sum_sq": a[2],
                }
                for (e, v, m), a in sorted(sums.items())
            ],
        )
    return outcomes


def _units(
    conn: Any,
    proposed: dict[tuple[str, str], str],
    state: dict[str, tuple[str, int]],
    at: Any,
) -> dict[tuple[str, str], str]:
    """Each request's stored variant, inserting units for new requests of running experiments."""
    sql = _statements(conn.dialect.name)
    stored: dict[tuple[str, str], str] = {}
    new_rows = [
        {
            "experiment_id": exp,
            "request_id": req,
            "variant": variant,
            "allocation_version": state[exp][1],
            "at": at,
        }
        for (exp, req), variant in sorted(proposed.items())
        if state[exp][0] == "running"
    ]
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    if new_rows:
        for exp, req, variant in conn.execute(sql["units"], new_rows):
            stored[(exp, req)] = variant
            counts[(exp, variant, state[exp][1])] += 1
    missing = sorted(k for k in proposed if k not in stored)
    for chunk in _chunks(missing):
        query = select(UNIT.c.experiment_id, UNIT.c.request_id, UNIT.c.variant).where(
            tuple_(UNIT.c.experiment_id, UNIT.c.request_id).in_(chunk)
        )
        for exp, req, variant in conn.execute(query):
            stored[(exp, req)] = variant
    if counts:
        conn.execute(
            sql["counts"],
            [
                {"experiment_id": e, "variant": v, "allocation_version": ver, "n": n}
                for (e, v, ver), n in sorted(counts.items())
            ],
        )
    return stored
