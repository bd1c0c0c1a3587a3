"""Performance snapshots in the database: written by each serving process every few seconds,
read by consoles and CLIs in other processes (or on other machines with PostgreSQL).

Each row names the process that wrote it (``process``: host and pid, inside ``metrics``), so
that several processes serving one deployment (``nightscan serve --workers N``, or several
hosts) add up: ``latest`` merges the newest row of every process, ``history`` sums the seconds,
and ``by_process`` keeps them apart."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import col, delete, select

from core.deployments.performance import (
    FRESH_FOR_S,
    PROCESS_KEY,
    PerformanceMetrics,
    SecondSample,
    merge,
    newest_per_process,
    sum_second,
)
from core.deployments.tracker import PerformanceTracker
from data.database import Database
from data.deployment_tables import PerformanceSnapshotRow
from data.poison import commit_isolating, describe
from data.types import utcnow

SNAPSHOT_EVERY_S = 5.0
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
        self.process = f"{socket.gethostname()[:60]}:{os.getpid()}"

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
                        "metrics": {**metrics.to_dict(), PROCESS_KEY: self.process},
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
        from core.monitoring.set_aside import count_set_aside

        self.set_aside += 1
        count_set_aside("snapshots")
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

    def _fresh_rows(self, deployment_id: str, seconds: float) -> list[PerformanceSnapshotRow]:
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
        query = (
            select(PerformanceSnapshotRow)
            .where(
                PerformanceSnapshotRow.deployment_id == deployment_id,
                col(PerformanceSnapshotRow.at) >= cutoff,
            )
            .order_by(col(PerformanceSnapshotRow.id).desc())
        )
        with self.db.session() as session:
            return list(session.exec(query).all())

    def by_process(self, deployment_id: str) -> dict[str, PerformanceMetrics]:
        """The newest fresh snapshot of every process serving the deployment."""
        return newest_per_process(
            row.metrics for row in self._fresh_rows(deployment_id, FRESH_FOR_S)
        )

    def latest(self, deployment_id: str) -> PerformanceMetrics | None:
        """The deployment's numbers over every process that serves it (see ``merge``)."""
        return merge(list(self.by_process(deployment_id).values()))

    def history(self, deployment_id: str, seconds: float) -> list[SecondSample]:
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds + SNAPSHOT_EVERY_S)
        query = (
            select(PerformanceSnapshotRow.metrics, PerformanceSnapshotRow.samples)
            .where(
                PerformanceSnapshotRow.deployment_id == deployment_id,
                col(PerformanceSnapshotRow.at) >= cutoff,
            )
            .order_by(col(PerformanceSnapshotRow.id))
        )
        with self.db.session() as session:
            batches = session.exec(query).all()
        # A later copy of a second from the same process is more complete; processes add up.
        by_second: dict[float, dict[str, SecondSample]] = {}
        horizon = time.time() - seconds
        for metrics, batch in batches:
            process = str((metrics or {}).get(PROCESS_KEY, ""))
            for values in batch or []:
                sample = SecondSample(*values)
                if sample.t >= horizon:
                    by_second.setdefault(sample.t, {})[process] = sample
        return [sum_second(list(by_second[t].values())) for t in sorted(by_second)]
