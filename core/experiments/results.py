"""Durable, idempotent result collection with group commits.

``ResultWriter.write`` hands a list of results to one background thread and blocks until the
transaction that holds them has committed, so a caller that got an answer has its data on disk
(SQLite: WAL with ``synchronous=FULL``; PostgreSQL: a committed transaction). The thread takes
the write lock first and then drains everything that queued up meanwhile (during the previous
commit, or while another process held SQLite's lock) into one transaction, which turns many
small writers into few large commits. On SQLite it polls for the lock every ~0.5 ms rather than
relying on SQLite's busy handler, whose sleeps grow to 100 ms and leave the lock idle. What one
transaction writes is in ``core.experiments.batch``; deadlocks and serialisation failures
(PostgreSQL) are retried; a batch the database refuses for its rows is split until every
row it accepts is committed, and each refused item is set aside (``data.poison``).
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from core.errors import ValidationError
from core.experiments.batch import Outcome, ResultItem, write_batch
from core.experiments.config import MetricKind, MetricSpec
from data.database import Database
from data.poison import commit_isolating, describe, is_transient
from data.types import utcnow

__all__ = ["Outcome", "ResultItem", "ResultWriter", "validate_result"]

log = logging.getLogger(__name__)

MAX_BATCH = 20_000  # results per transaction
_RETRIES = 5  # for deadlocks and serialisation failures (PostgreSQL)
LOCK_TIMEOUT_S = 30.0  # how long to wait for SQLite's write lock, as data.database does


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
    if (
        not isinstance(request_id, str)
        or not request_id
        or len(request_id) > 300
        or "\x00" in request_id
    ):
        problems.append("request_id must be a non-empty string of at most 300 characters, no NUL")
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
        self.set_aside = 0  # results the database refused (see data.poison)
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
                    outcomes = write_batch(conn, items, self.clock())
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
                if not is_transient(exc):  # the rows, not the database: isolate the refused
                    try:
                        outcomes = self._isolate([item for p in batch for item in p.items])
                        break
                    except Exception as again:
                        exc = again
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

    def _isolate(self, items: list[ResultItem]) -> list[Outcome]:
        """A batch the database refused: every item it accepts is committed (bisecting, see
        ``data.poison``); each refused one is set aside, and its outcome says why."""
        outcomes: list[Outcome] = [0] * len(items)
        now = self.clock()

        def commit(start: int, stop: int) -> None:
            outcomes[start:stop] = self._in_transaction(
                lambda conn: write_batch(conn, items[start:stop], now)
            )

        for index, exc in commit_isolating(len(items), commit):
            outcomes[index] = self._set_aside(items[index], exc)
        self.commits += 1
        return outcomes

    def _in_transaction(self, work: Callable[[Any], list[Outcome]]) -> list[Outcome]:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                with self._engine.begin() as conn:
                    return work(conn)
            except OperationalError as exc:
                if _locked(exc) and time.monotonic() < deadline:
                    time.sleep(random.uniform(0.0002, 0.0008))
                    continue
                raise

    def _set_aside(self, item: ResultItem, exc: Exception) -> Exception:
        from core.events import emit
        from core.monitoring.set_aside import count_set_aside

        self.set_aside += 1
        count_set_aside("result_writer")
        reason = describe(exc)
        shown = ascii(item.request_id)[:80]
        log.warning("result %s of %s set aside: %s", shown, item.experiment_id, reason)
        try:
            emit(
                "experiment.result_set_aside",
                f"a result the database refused was set aside ({reason})",
                source=ascii(item.experiment_id)[:200],
                severity="warning",
                data={"request_id": shown, "reason": reason},
            )
        except Exception:  # the event is a report; the count, the log and the outcome remain
            log.exception("could not record the set-aside result")
        return ValidationError(f"the database refused this result ({reason}); it was set aside")


def _fail_fast_when_locked(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=0")
    cur.close()


def _locked(exc: Exception) -> bool:
    return "database is locked" in str(getattr(exc, "orig", exc)).lower()


def _transient(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked", "busy"))
