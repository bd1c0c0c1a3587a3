"""Performance snapshots in the database: written by the serving process every few seconds,
read by consoles and CLIs in other processes (or on other machines with PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlmodel import col, delete, select

from core.deployments.tracker import PerformanceMetrics, PerformanceTracker, SecondSample
from data.database import Database
from data.deployment_tables import PerformanceSnapshotRow
from data.types import utcnow

SNAPSHOT_EVERY_S = 5.0
FRESH_FOR_S = 60.0  # an older snapshot means nobody is serving it now
KEEP_FOR = timedelta(hours=6)


class SnapshotStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._last_write = 0.0
        self._last_prune = 0.0
        self._last_second: dict[str, float] = {}
        self._lock = threading.Lock()

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
                    PerformanceSnapshotRow(
                        deployment_id=deployment_id,
                        model_version=metrics.model_version,
                        at=utcnow(),
                        metrics=metrics.to_dict(),
                        samples=[list(s.__dict__.values()) for s in samples],
                    )
                )
            if not rows:
                return 0
            with self.db.write() as session:
                session.add_all(rows)
                if now - self._last_prune > 600:
                    self._last_prune = now
                    cutoff = datetime.now(UTC) - KEEP_FOR
                    session.exec(
                        delete(PerformanceSnapshotRow).where(
                            col(PerformanceSnapshotRow.at) < cutoff
                        )
                    )
            return len(rows)

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
