"""Durable, idempotent result collection with group commits.

``ResultWriter.write`` hands a list of results to one background thread and blocks until the
transaction that holds them has committed, so a caller that got an answer has its data on disk
(SQLite: WAL with ``synchronous=FULL``; PostgreSQL: a committed transaction). The thread drains
whatever queued up while the previous commit was in flight into the next transaction, which
turns many small writers into few large commits.

Each transaction, per batch:

1. units: ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` one row per new request (its variant
   and the allocation version in force), and +1 on ``experiment_unit_count`` for each row that
   was actually inserted; a result whose variant disagrees with its request's stored variant is
   refused (``ConflictError``) and nothing of it is written.
2. results: ``INSERT ... ON CONFLICT (experiment_id, request_id, metric) DO NOTHING RETURNING``;
   a re-sent result is a no-op, not an error.
3. sufficient statistics: n, sum and sum of squares per variant and metric are upserted from
   exactly the rows step 2 returned, so nothing is ever double counted.

Rows are written in one global order (table, then key) so concurrent PostgreSQL writers cannot
deadlock on each other's keys; a transaction that still fails with a transient error is retried.
"""

from __future__ import annotations

import functools
import logging
import math
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, event, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import TypeDecorator

from core.errors import ConflictError, NotFoundError, ValidationError
from core.experiments.config import MetricKind, MetricSpec
from data.database import Database
from data.experiment_tables import (
    ExperimentMetricStatsRow,
    ExperimentResultRow,
    ExperimentRow,
    ExperimentUnitCountRow,
    ExperimentUnitRow,
)
from data.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

MAX_BATCH = 20_000  # metric values per transaction
_CHUNK = 500  # keys per IN (...) query
_RETRIES = 5  # for deadlocks and serialisation failures (PostgreSQL)
LOCK_TIMEOUT_S = 30.0  # how long to wait for SQLite's write lock, as data.database does

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


def validate_result(
    experiment_id: str,
    variants: Sequence[str],
    specs: Mapping[str, MetricSpec],
    request_id: str,
    variant: str,
    metrics: Mapping[str, Any],
) -> ResultItem:
    """Check one result against its experiment; every fault in one ValidationError."""
    problems: list[str] = []
    if not isinstance(request_id, str) or not request_id or len(request_id) > 300:
        problems.append("request_id must be a non-empty string of at most 300 characters")
    if variant not in variants:
        problems.append(f"variant {variant!r} is not one of {', '.join(variants)}")
    if not isinstance(metrics, Mapping) or not metrics:
        problems.append("metrics must be a non-empty mapping of metric name -> number")
        metrics = {}
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        spec = specs.get(name)
        if spec is None:
            problems.append(f"unknown metric {name!r} (known: {', '.join(specs)})")
            continue
        binary = spec.kind is MetricKind.BINARY
        # True/False are fine as binary outcomes, never as measurements.
        numeric = isinstance(value, int | float) and (binary or not isinstance(value, bool))
        if not numeric or not math.isfinite(value):
            problems.append(f"metric {name!r} must be a finite number, got {value!r}")
        elif binary and not 0.0 <= value <= 1.0:
            problems.append(f"binary metric {name!r} must lie in [0, 1], got {value!r}")
        else:
            clean[name] = float(value)
    if problems:
        raise ValidationError(f"invalid result for {experiment_id}: " + "; ".join(problems))
    return ResultItem(experiment_id, request_id, variant, clean)


class _Pending:
    """A caller's items and a lock it sleeps on until the committer releases it (cheaper than
    a Future or a Condition when hundreds of threads wait on one commit)."""

    __slots__ = ("items", "done", "outcomes", "error")

    def __init__(self, items: list[ResultItem]) -> None:
        self.items = items
        self.done = threading.Lock()
        self.done.acquire()
        self.outcomes: list[Outcome] = []
        self.error: BaseException | None = None

    def finish(self, outcomes: list[Outcome] | None, error: BaseException | None = None) -> None:
        self.outcomes, self.error = outcomes or [], error
        self.done.release()

    def wait(self) -> list[Outcome]:
        self.done.acquire()
        if self.error is not None:
            raise self.error
        return self.outcomes


_STOP = object()


class ResultWriter:
    """One committer thread per process (started on first use)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.commits = 0  # transactions committed (for tests and the benchmark)
        self._private: Database | None = None
        self._engine = db.write_engine
        if db.is_sqlite and make_url(db.url).database not in (None, "", ":memory:"):
            # SQLite's built-in busy handler sleeps up to 100 ms between tries, leaving the
            # write lock idle while other processes wait. The committer gets a private
            # connection that fails fast instead, and polls for the lock every ~0.5 ms.
            self._private = Database(db.url)
            event.listen(self._private.write_engine, "connect", _fail_fast_when_locked)
            self._engine = self._private.write_engine

    def write(self, items: list[ResultItem]) -> list[Outcome]:
        """Block until ``items`` are committed; one outcome per item, in order."""
        if not items:
            return []
        pending = _Pending(items)
        self._ensure_started()
        self._queue.put(pending)
        return pending.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=30)
        if self._private is not None:
            self._private.dispose()

    # ---- the committer thread ----------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._closed:
                raise RuntimeError("the result writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nightscan-result-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            if self._commit(batch):
                return

    def _drain(self, batch: list[_Pending]) -> bool:
        """Add what queued up meanwhile to ``batch``; True if a stop request was seen."""
        size = sum(len(p.items) for p in batch)
        while size < MAX_BATCH:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is _STOP:
                return True
            batch.append(nxt)
            size += len(nxt.items)
        return False

    def _commit(self, batch: list[_Pending]) -> bool:
        """Write ``batch`` (grown by whatever arrives before the write lock is ours) in one
        transaction, retrying transient failures, and wake its callers. True means stop."""
        stop = False
        attempt, deadline = 0, time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                # A bare connection, no ORM session; on SQLite it begins IMMEDIATE, so this
                # waits for the write lock, and callers arriving meanwhile join the batch.
                with self._engine.begin() as conn:
                    stop = self._drain(batch) or stop
                    items = [item for p in batch for item in p.items]
                    outcomes = _write_batch(conn, items, self.clock())
                self.commits += 1
                break
            except (OperationalError, DBAPIError) as exc:
                if _locked(exc) and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.0002, 0.0008))
                    continue
                attempt += 1
                if attempt < _RETRIES and _transient(exc):
                    time.sleep(0.01 * 2**attempt)
                    continue
                for p in batch:
                    p.finish(None, exc)
                return stop
            except Exception as exc:  # a bug must reach every caller, not kill the thread
                log.exception("result batch failed")
                for p in batch:
                    p.finish(None, exc)
                return stop
        start = 0
        for p in batch:
            p.finish(outcomes[start : start + len(p.items)])
            start += len(p.items)
        return stop


def _fail_fast_when_locked(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


def _locked(exc: Exception) -> bool:
    return "database is locked" in str(getattr(exc, "orig", exc)).lower()


def _transient(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked", "busy"))


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


def _write_batch(conn: Any, items: list[ResultItem], now: datetime) -> list[Outcome]:
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
