"""Performance snapshots in the database: written by the serving process every few seconds,
read by consoles and CLIs in other processes (or on other machines with PostgreSQL)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import col, delete, select

from core.deployments.tracker import PerformanceMetrics, PerformanceTracker, SecondSample
from data.database import Database
from data.deployment_tables import PerformanceSnapshotRow
from data.poison import commit_isolating, describe
from data.types import utcnow

SNAPSHOT_EVERY_S = 5.0
FRESH_FOR_S = 60.0  # an older snapshot means nobody is serving it now
KEEP_FOR = timedelta(hours=6)
log = logging.getLogger(__name__)


class SnapshotStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._last_write = 0.0
        self._last_prune = 0.0
        self._last_second: dict[str, float] = {}
        self._lock = threading.Lock()
        self.set_aside = 0  # snapshots the database refused (see data.poison)

    def maybe_persist(
        self, tracker: PerformanceTracker, deployment_ids: list[str], force: bool = False
    ) -> int:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_write < SNAPSHOT_EVERY_S:
                return 0
            self._last_write = now
            local = set(tracker.keys())
            rows = []
            for deployment_id in deployment_ids:
                if deployment_id not in local:
                    continue
                metrics = tracker.get_current_metrics(deployment_id)
                since = self._last_second.get(deployment_id, 0.0)
                samples = [s for s in tracker.samples_since(deployment_id, since)]
                # The newest second is still filling: it is sent again next time, complete.
                if samples:
                    self._last_second[deployment_id] = samples[-1].t
                rows.append(
                    {
                        "deployment_id": deployment_id,
                        "model_version": metrics.model_version,
                        "at": utcnow(),
                        "metrics": metrics.to_dict(),
                        "samples": [list(s.__dict__.values()) for s in samples],
                    }
                )
            if not rows:
                return 0

            def commit(start: int, stop: int) -> None:
                with self.db.write() as session:
                    session.execute(insert(PerformanceSnapshotRow.__table__), rows[start:stop])

            refused = commit_isolating(len(rows), commit)
            for index, exc in refused:
                self._set_aside(rows[index]["deployment_id"], exc)
            if now - self._last_prune > 600:
                self._last_prune = now
                cutoff = datetime.now(UTC) - KEEP_FOR
                with self.db.write() as session:
                    session.exec(
                        delete(PerformanceSnapshotRow).where(
                            col(PerformanceSnapshotRow.at) < cutoff
                        )
                    )
            return len(rows) - len(refused)

    def _set_aside(self, deployment_id: str, exc: Exception) -> None:
        """A snapshot the database refused: counted, logged, reported; the others are kept."""
        from core.events import emit

        self.set_aside += 1
        reason = describe(exc)
        log.warning("snapshot of %s set aside: %s", ascii(deployment_id)[:80], reason)
        try:
            emit(
                "snapshot.row_set_aside",
                f"a performance snapshot the database refused was set aside ({reason})",
                source=ascii(deployment_id)[:200],
                severity="warning",
                data={"reason": reason},
            )
        except Exception:
            log.exception("could not record the set-aside snapshot")

    def latest(self, deployment_id: str) -> PerformanceMetrics | None:
        cutoff = datetime.now(UTC) - timedelta(seconds=FRESH_FOR_S)
        query = (
            select(PerformanceSnapshotRow)
            .where(
                PerformanceSnapshotRow.deployment_id == deployment_id,
                col(PerformanceSnapshotRow.at) >= cutoff,
            )
            .order_by(col(PerformanceSnapshotRow.id).desc())
            .limit(1)
        )
        with self.db.session() as session:
            row = session.exec(query).first()
        return PerformanceMetrics.from_dict(row.metrics) if row else None

    def history(self, deployment_id: str, seconds: float) -> list[SecondSample]:
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds + SNAPSHOT_EVERY_S)
        query = (
            select(PerformanceSnapshotRow.samples)
            .where(
                PerformanceSnapshotRow.deployment_id == deployment_id,
                col(PerformanceSnapshotRow.at) >= cutoff,
            )
            .order_by(col(PerformanceSnapshotRow.id))
        )
        with self.db.session() as session:
            batches = session.exec(query).all()
        by_second: dict[float, SecondSample] = {}
        horizon = time.time() - seconds
        for batch in batches:
            for values in batch or []:
                sample = SecondSample(*values)
                if sample.t >= horizon:
                    by_second[sample.t] = sample  # a later copy of a second is more complete
        return [by_second[t] for t in sorted(by_second)]
