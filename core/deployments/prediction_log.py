"""Predictions that ground truth can be joined to later.

Feedback often arrives long after the prediction (a reviewer labels a night's recordings in the
morning), at whichever server process the client reaches. Each prediction is kept in memory for
the fast path and written to the ``prediction`` table in batches every ``FLUSH_EVERY_S``, off the
request path; feedback finds it in memory or in the table, and the first feedback to set its
``correct`` column (one conditional UPDATE) is the one that counts, in whatever process.
A crash loses at most the last flush interval of predictions for joining; their answers and
experiment results are unaffected. With ``NIGHTSCAN_DURABLE_PREDICTIONS=1`` a crash loses none
that were answered: ``/predict`` answers once its row is committed (``written``), and the writer
flushes as soon as anyone waits, so concurrent requests share one commit (group commit).
Rows older than ``RETENTION_DAYS`` are pruned. A row the
database refuses is set aside (a warning event and ``set_aside``), and the rest of its batch is
committed (``data.poison``): one bad row never stops the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from core.quality import rollup
from data.database import Database
from data.deployment_tables import PredictionRow
from data.poison import commit_isolating, describe
from data.types import utcnow

log = logging.getLogger(__name__)
IN_MEMORY = 100_000
FLUSH_EVERY_S = 0.5
RETENTION_DAYS = 30
PRUNE_EVERY_S = 3600.0
DURABLE_ENV = "NIGHTSCAN_DURABLE_PREDICTIONS"  # "1": answer only once the row is committed


def durable_from_env() -> bool:
    return os.environ.get(DURABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(frozen=True)
class Prediction:
    request_id: str
    deployment_id: str
    model_ref: str
    labels: tuple[str, ...]
    predicted_class: str
    experiment_id: str | None = None
    variant: str | None = None
    canary_arm: tuple[int, str] | None = None  # (canary id, "stable" | "canary")
    confidence: float | None = None  # the top class's probability, for calibration and drift


def _row(p: Prediction, at: datetime) -> dict[str, Any]:
    return {
        "request_id": p.request_id,
        "deployment_id": p.deployment_id,
        "model_ref": p.model_ref,
        "labels": list(p.labels),
        "predicted_class": p.predicted_class,
        "experiment_id": p.experiment_id,
        "variant": p.variant,
        "canary_id": p.canary_arm[0] if p.canary_arm else None,
        "canary_arm": p.canary_arm[1] if p.canary_arm else None,
        "at": at,
        "confidence": p.confidence,
        "confidence_bin": None if p.confidence is None else rollup.confidence_bin(p.confidence),
    }


def _prediction(row: PredictionRow) -> Prediction:
    arm = (row.canary_id, row.canary_arm) if row.canary_id is not None else None
    return Prediction(
        row.request_id,
        row.deployment_id,
        row.model_ref,
        tuple(row.labels or ()),
        row.predicted_class,
        row.experiment_id,
        row.variant,
        arm,  # type: ignore[arg-type]
        row.confidence,
    )


class PredictionLog:
    def __init__(self, db: Database, durable: bool | None = None) -> None:
        self.db = db
        self.durable = durable_from_env() if durable is None else durable
        self._seq = 0  # predictions remembered so far
        self._written = 0  # every one up to this sequence number is committed (or set aside)
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._recent: OrderedDict[str, Prediction] = OrderedDict()
        self._pending: list[tuple[Prediction, datetime]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at = float("-inf")
        self.set_aside = 0  # predictions the database refused (see data.poison)
        insert = (sqlite if db.is_sqlite else postgresql).insert
        table = PredictionRow.__table__
        # RETURNING names the rows this flush wrote, so a repeated request id counts once.
        self._insert = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["request_id"])
            .returning(table.c.request_id)
        )

    def remember(self, prediction: Prediction) -> int:
        """Keep a prediction; returns its sequence number (for ``written``)."""
        with self._lock:
            self._seq += 1
            self._recent[prediction.request_id] = prediction
            self._recent.move_to_end(prediction.request_id)
            while len(self._recent) > IN_MEMORY:
                self._recent.popitem(last=False)
            self._pending.append((prediction, utcnow()))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="prediction-log", daemon=True
                )
                self._thread.start()
            return self._seq

    async def written(self, seq: int) -> None:
        """Until the prediction numbered ``seq`` is committed (the next flush, started now)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if seq <= self._written:
                return
            self._waiters.append((seq, loop, future))
        self._wake.set()
        await future

    def _mark_written(self, upto: int) -> None:
        with self._lock:
            self._written = max(self._written, upto)
            done = [w for w in self._waiters if w[0] <= self._written]
            self._waiters = [w for w in self._waiters if w[0] > self._written]
        for _seq, loop, future in done:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # its loop is closed: nobody waits any more
                pass

    def find(self, request_id: str) -> Prediction | None:
        with self._lock:
            found = self._recent.get(request_id)
        if found is not None:
            return found
        with self.db.session() as session:
            row = session.get(PredictionRow, request_id)
        return _prediction(row) if row is not None else None

    def claim(
        self, request_id: str, correct: bool, true_label: str | None = None
    ) -> tuple[bool, bool | None]:
        """Record the first feedback's verdict: (whether this call was first, the verdict that
        stands). Only one caller in any process gets True for a request. With ``true_label``
        the quality counts (core/quality) move in the same transaction."""
        self.flush()  # this process may not have written the prediction yet
        table = PredictionRow.__table__
        now = utcnow()
        with self.db.write() as session:
            changed = session.execute(
                update(table)
                .where(table.c.request_id == request_id, table.c.correct.is_(None))
                .values(correct=correct, feedback_at=now, true_label=true_label)
            ).rowcount
            if changed:
                if true_label is not None:
                    self._label(session, request_id, true_label, now)
                return True, correct
            row = session.get(PredictionRow, request_id)
            return False, row.correct if row is not None else None

    def _label(self, session, request_id: str, true_label: str, now: datetime) -> None:
        table = PredictionRow.__table__
        row = session.execute(select(table).where(table.c.request_id == request_id)).one()
        delay_s = max(0.0, (now - row.at).total_seconds())
        session.execute(
            update(table).where(table.c.request_id == request_id).values(label_delay_s=delay_s)
        )
        rollup.move_to_labelled(session, row._mapping, true_label, delay_s)

    def flush(self) -> int:
        """Write what was remembered since the last flush; returns how many rows."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
                upto = self._seq
            if not pending:
                self._mark_written(upto)
                return 0
            # One row per request id (the last remembered wins), each with its prediction.
            latest = {p.request_id: (p, at) for p, at in pending}
            unique = list(latest.values())
            rows = [_row(p, at) for p, at in unique]

            def commit(start: int, stop: int) -> None:
                batch = rows[start:stop]
                with self.db.write() as session:
                    inserted = set(session.execute(self._insert, batch).scalars())
                    # RETURNING names the rows written now: a repeated id counts once.
                    rollup.add_predictions(
                        session, (r for r in batch if r["request_id"] in inserted)
                    )

            try:
                refused = commit_isolating(len(rows), commit)
            except Exception:
                with self._lock:  # a lock or a lost connection: keep them all for the next try
                    self._pending[:0] = pending
                raise
            for index, exc in refused:
                self._set_aside(unique[index][0], exc)
            self._mark_written(upto)
            return len(unique) - len(refused)

    def _set_aside(self, prediction: Prediction, exc: Exception) -> None:
        """A row the database refused: counted, reported, and never retried."""
        from core.events import emit
        from core.monitoring.set_aside import count_set_aside

        self.set_aside += 1
        count_set_aside("prediction_log")
        reason = describe(exc)
        shown = ascii(prediction.request_id)[:80]  # the id itself may be what was refused
        log.warning("prediction %s set aside: %s", shown, reason)
        try:
            emit(
                "prediction_log.row_set_aside",
                f"a prediction the database refused was set aside ({reason})",
                source=prediction.deployment_id.replace("\x00", "")[:200],
                severity="warning",
                data={"request_id": shown, "reason": reason},
            )
        except Exception:  # the event is a report; the count and the log line remain
            log.exception("could not record the set-aside prediction")

    def prune(self, now: datetime | None = None) -> int:
        cutoff = (now or utcnow()) - timedelta(days=RETENTION_DAYS)
        table = PredictionRow.__table__
        with self.db.write() as session:
            return session.execute(delete(table).where(table.c.at < cutoff)).rowcount

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._wake.set()
            thread.join(timeout=30)
        try:
            self.flush()
        except Exception:  # the database may be gone at exit; only joins are at stake
            log.exception("could not write the last predictions")

    def _run(self) -> None:
        while self._thread is threading.current_thread():
            self._wake.wait(FLUSH_EVERY_S)
            self._wake.clear()
            try:
                self.flush()
                if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
                    self._pruned_at = time.monotonic()
                    self.prune()
            except Exception:
                log.exception("prediction log flush failed")
