"""The SQL of one group commit: units, raw results and sufficient statistics, in one order.

1. units: ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` one row per new request (its variant
   and the allocation version in force), and +1 on ``experiment_unit_count`` for each row that
   was actually inserted; a result whose variant disagrees with its request's stored variant is
   refused (``ConflictError``) and nothing of it is written.
2. results: ``INSERT ... ON CONFLICT (experiment_id, request_id, metric) DO NOTHING RETURNING``;
   a re-sent result is a no-op, not an error.
3. sufficient statistics: n, sum and sum of squares per variant and metric, and per variant,
   metric and allocation epoch (the unit's allocation version), are upserted from exactly the
   rows step 2 returned, so nothing is ever double counted.

Rows are written in one global order (table, then key) so concurrent PostgreSQL writers cannot
deadlock on each other's keys. The per-row statements go to the driver as plain SQL with
multi-row VALUES: SQLAlchemy's per-row parameter handling was half of the committer's CPU
(py-spy), and these rows, already in the driver's types, need none of it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_

from core.errors import ConflictError, NotFoundError
from data.experiment_tables import (
    ExperimentEpochMetricStatsRow,
    ExperimentMetricStatsRow,
    ExperimentResultRow,
    ExperimentRow,
    ExperimentUnitCountRow,
    ExperimentUnitRow,
)
from data.types import UTCDateTime

_CHUNK = 500  # keys per IN (...) query
_ROWS_PER_INSERT = 500  # rows per multi-row INSERT (at most 3,000 bound values)

UNIT_COLUMNS = ("experiment_id", "request_id", "variant", "allocation_version", "first_seen_at")
RESULT_COLUMNS = ("experiment_id", "request_id", "metric", "variant", "value", "recorded_at")
STATS_COLUMNS = ("experiment_id", "variant", "metric", "n", "sum", "sum_sq")
COUNT_COLUMNS = ("experiment_id", "variant", "allocation_version", "n")
EPOCH_COLUMNS = ("experiment_id", "variant", "metric", "allocation_version", "n", "sum", "sum_sq")

EXPERIMENT = ExperimentRow.__table__
UNIT = ExperimentUnitRow.__table__
UNIT_COUNT = ExperimentUnitCountRow.__table__
RESULT = ExperimentResultRow.__table__
STATS = ExperimentMetricStatsRow.__table__
EPOCH_STATS = ExperimentEpochMetricStatsRow.__table__


@dataclass(frozen=True)
class ResultItem:
    """One validated call: a request's values for some of the experiment's metrics."""

    experiment_id: str
    request_id: str
    variant: str
    metrics: dict[str, float]


Outcome = int | Exception  # newly stored metric values, or why the item was refused


# Built once, so SQLAlchemy's compiled cache always hits.
STATE_QUERY = select(
    EXPERIMENT.c.experiment_id, EXPERIMENT.c.status, EXPERIMENT.c.allocation_version
).where(EXPERIMENT.c.experiment_id.in_(bindparam("ids", expanding=True)))


@functools.cache
def _driver_sql(dialect_name: str) -> dict[str, tuple[str, str, str]]:
    """(head, one row's placeholders, tail) per statement; SQLite and PostgreSQL share the
    ON CONFLICT ... RETURNING syntax and differ only in the placeholder."""
    mark = "%s" if dialect_name == "postgresql" else "?"

    def insert(table: Any, columns: tuple[str, ...], tail: str) -> tuple[str, str, str]:
        names = ", ".join(f'"{c}"' for c in columns)
        return (
            f'INSERT INTO "{table.name}" ({names}) VALUES ',
            f"({', '.join([mark] * len(columns))})",
            tail,
        )

    def adding(table: Any, keys: tuple[str, ...], sums: tuple[str, ...]) -> str:
        added = ", ".join(f'"{c}" = "{table.name}"."{c}" + excluded."{c}"' for c in sums)
        return f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added}"

    return {
        "units": insert(
            UNIT,
            UNIT_COLUMNS,
            " ON CONFLICT (experiment_id, request_id) DO NOTHING"
            " RETURNING experiment_id, request_id, variant, allocation_version",
        ),
        "results": insert(
            RESULT,
            RESULT_COLUMNS,
            " ON CONFLICT (experiment_id, request_id, metric) DO NOTHING"
            " RETURNING experiment_id, request_id, metric",
        ),
        "stats": insert(
            STATS,
            STATS_COLUMNS,
            adding(STATS, ("experiment_id", "variant", "metric"), ("n", "sum", "sum_sq")),
        ),
        "epoch_stats": insert(
            EPOCH_STATS,
            EPOCH_COLUMNS,
            adding(
                EPOCH_STATS,
                ("experiment_id", "variant", "metric", "allocation_version"),
                ("n", "sum", "sum_sq"),
            ),
        ),
        "counts": insert(
            UNIT_COUNT,
            COUNT_COLUMNS,
            adding(UNIT_COUNT, ("experiment_id", "variant", "allocation_version"), ("n",)),
        ),
    }


def _insert(conn: Any, name: str, rows: list[tuple]) -> list[tuple]:
    """Insert ``rows`` (already sorted) a chunk at a time; the rows RETURNING gave back."""
    head, row, tail = _driver_sql(conn.dialect.name)[name]
    returned: list[tuple] = []
    for chunk in _chunks(rows, _ROWS_PER_INSERT):
        sql = head + ", ".join([row] * len(chunk)) + tail
        result = conn.exec_driver_sql(sql, tuple(v for r in chunk for v in r))
        if result.returns_rows:
            returned.extend(result.fetchall())
    return returned


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
    at = _db_time(conn, now)
    state = {r[0]: (r[1], r[2]) for r in conn.execute(STATE_QUERY, {"ids": exp_ids})}
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
        unit_variant, _version = stored.get((it.experiment_id, it.request_id), (None, 0))
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
        (exp, req, metric, items[i].variant, float(items[i].metrics[metric]), at)
        for (exp, req, metric), i in sorted(accepted.items())
    ]
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    epoch_sums: dict[tuple[str, str, str, int], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for exp, req, metric in _insert(conn, "results", rows):
        i = accepted[(exp, req, metric)]
        value = items[i].metrics[metric]
        version = stored[(exp, req)][1]
        for acc in (
            sums[(exp, items[i].variant, metric)],
            epoch_sums[(exp, items[i].variant, metric, version)],
        ):
            acc[0] += 1
            acc[1] += value
            acc[2] += value * value
        outcomes[i] += 1
    _insert(conn, "stats", [(e, v, m, *a) for (e, v, m), a in sorted(sums.items())])
    _insert(conn, "epoch_stats", [(*k, *a) for k, a in sorted(epoch_sums.items())])
    return outcomes


def _units(
    conn: Any,
    proposed: dict[tuple[str, str], str],
    state: dict[str, tuple[str, int]],
    at: Any,
) -> dict[tuple[str, str], tuple[str, int]]:
    """Each request's stored (variant, allocation version), inserting units for new requests
    of running experiments."""
    stored: dict[tuple[str, str], tuple[str, int]] = {}
    new_rows = [
        (exp, req, variant, state[exp][1], at)
        for (exp, req), variant in sorted(proposed.items())
        if state[exp][0] == "running"
    ]
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    for exp, req, variant, version in _insert(conn, "units", new_rows):
        stored[(exp, req)] = (variant, int(version))
        counts[(exp, variant, int(version))] += 1
    missing = sorted(k for k in proposed if k not in stored)
    for chunk in _chunks(missing):
        query = select(
            UNIT.c.experiment_id, UNIT.c.request_id, UNIT.c.variant, UNIT.c.allocation_version
        ).where(tuple_(UNIT.c.experiment_id, UNIT.c.request_id).in_(chunk))
        for exp, req, variant, version in conn.execute(query):
            stored[(exp, req)] = (variant, int(version))
    _insert(conn, "counts", [(e, v, ver, n) for (e, v, ver), n in sorted(counts.items())])
    return stored
