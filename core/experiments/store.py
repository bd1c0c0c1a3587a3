"""Persistence of experiments: definitions, lifecycle, allocation history and the aggregates
analysis reads. Every mutation writes its audit entry (and event) in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.audit import AuditLog
from core.errors import ConflictError, NotFoundError
from core.events import emit
from core.experiments.config import ExperimentConfig
from core.experiments.models import (
    AllocationChange,
    ExperimentInfo,
    ExperimentStatus,
    check_transition,
)
from data.database import Database
from data.experiment_tables import (
    ExperimentAllocationRow,
    ExperimentEpochMetricStatsRow,
    ExperimentMetricStatsRow,
    ExperimentRow,
    ExperimentStatusChangeRow,
    ExperimentUnitCountRow,
    ExperimentUnitRow,
)

SOURCE = "experiments"


def _info(row: ExperimentRow, allocation: dict[str, float]) -> ExperimentInfo:
    return ExperimentInfo(
        experiment_id=row.experiment_id,
        name=row.name,
        description=row.description,
        status=ExperimentStatus(row.status),
        config=ExperimentConfig.from_dict(row.config),
        allocation=allocation,
        allocation_version=row.allocation_version,
        created_at=row.created_at,
        created_by=row.created_by,
        started_at=row.started_at,
        ended_at=row.ended_at,
        stop_reason=row.stop_reason,
        stopped_by=row.stopped_by,
    )


def _change(row: ExperimentAllocationRow) -> AllocationChange:
    return AllocationChange(
        experiment_id=row.experiment_id,
        version=row.version,
        allocation={k: float(v) for k, v in row.allocation.items()},
        source=row.source,
        at=row.at,
        actor=row.actor,
        reason=row.reason,
        detail=dict(row.detail or {}),
    )


class ExperimentStore:
    def __init__(self, db: Database, audit: AuditLog, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.audit = audit
        self.clock = clock

    # ---- reads ----------------------------------------------------------------------------------

    @staticmethod
    def _require(session: Session, experiment_id: str, lock: bool = False) -> ExperimentRow:
        query = select(ExperimentRow).where(ExperimentRow.experiment_id == experiment_id)
        if lock and session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = session.exec(query).first()
        if row is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return row

    @staticmethod
    def _allocation(session: Session, experiment_id: str, version: int) -> dict[str, float]:
        row = session.exec(
            select(ExperimentAllocationRow).where(
                ExperimentAllocationRow.experiment_id == experiment_id,
                ExperimentAllocationRow.version == version,
            )
        ).one()
        return {k: float(v) for k, v in row.allocation.items()}

    def get(self, experiment_id: str) -> ExperimentInfo:
        with self.db.session() as session:
            row = self._require(session, experiment_id)
            return _info(row, self._allocation(session, experiment_id, row.allocation_version))

    def exists(self, experiment_id: str) -> bool:
        with self.db.session() as session:
            return session.get(ExperimentRow, experiment_id) is not None

    def list(self, status: ExperimentStatus | None = None) -> list[ExperimentInfo]:
        """Newest first, each with its current allocation (one joined query)."""
        query = (
            select(ExperimentRow, ExperimentAllocationRow)
            .join(
                ExperimentAllocationRow,
                (ExperimentAllocationRow.experiment_id == ExperimentRow.experiment_id)
                & (ExperimentAllocationRow.version == ExperimentRow.allocation_version),
            )
            .order_by(col(ExperimentRow.created_at).desc())
        )
        if status is not None:
            query = query.where(ExperimentRow.status == status.value)
        with self.db.session() as session:
            rows = session.exec(query).all()
        return [_info(r, {k: float(v) for k, v in a.allocation.items()}) for r, a in rows]

    def routing_state(self, experiment_id: str) -> tuple[str, int]:
        with self.db.session() as session:
            row = session.exec(
                sa_select(ExperimentRow.status, ExperimentRow.allocation_version).where(
                    ExperimentRow.experiment_id == experiment_id
                )
            ).first()
        if row is None:
            raise NotFoundError(f"experiment {experiment_id} does not exist")
        return row[0], row[1]

    def history(self, experiment_id: str, after_version: int = 0) -> list[AllocationChange]:
        with self.db.session() as session:
            rows = session.exec(
                select(ExperimentAllocationRow)
                .where(
                    ExperimentAllocationRow.experiment_id == experiment_id,
                    ExperimentAllocationRow.version > after_version,
                )
                .order_by(col(ExperimentAllocationRow.version))
            ).all()
        return [_change(r) for r in rows]

    def status_history(self, experiment_id: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.exec(
                select(ExperimentStatusChangeRow)
                .where(ExperimentStatusChangeRow.experiment_id == experiment_id)
                .order_by(col(ExperimentStatusChangeRow.id))
            ).all()
        return [
            {
                "from_status": r.from_status,
                "to_status": r.to_status,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "reason": r.reason,
            }
            for r in rows
        ]

    def metric_stats(self, experiment_id: str) -> dict[tuple[str, str], tuple[int, float, float]]:
        """(variant, metric) -> (n, sum, sum of squares): one row per pair, whatever the data."""
        with self.db.session() as session:
            rows = session.exec(
                select(ExperimentMetricStatsRow).where(
                    ExperimentMetricStatsRow.experiment_id == experiment_id
                )
            ).all()
        return {(r.variant, r.metric): (int(r.n), float(r.sum), float(r.sum_sq)) for r in rows}

    def epoch_metric_stats(
        self, experiment_id: str
    ) -> dict[tuple[str, str, int], tuple[int, float, float]]:
        """(variant, metric, allocation version) -> (n, sum, sum of squares): one row per
        triple, so the cost grows with the number of epochs, never with the results."""
        t = ExperimentEpochMetricStatsRow.__table__
        query = sa_select(
            t.c.variant, t.c.metric, t.c.allocation_version, t.c.n, t.c.sum, t.c.sum_sq
        )
        with self.db.session() as session:
            rows = session.execute(query.where(t.c.experiment_id == experiment_id)).all()
        return {(v, m, int(ver)): (int(n), float(s), float(ss)) for v, m, ver, n, s, ss in rows}

    def unit_counts(self, experiment_id: str) -> dict[tuple[str, int], int]:
        """(variant, allocation version) -> units first seen under that allocation."""
        with self.db.session() as session:
            rows = session.exec(
                select(ExperimentUnitCountRow).where(
                    ExperimentUnitCountRow.experiment_id == experiment_id
                )
            ).all()
        return {(r.variant, r.allocation_version): int(r.n) for r in rows}

    def variant_for_request(self, experiment_id: str, request_id: str) -> str | None:
        with self.db.session() as session:
            row = session.get(ExperimentUnitRow, (experiment_id, request_id))
        return row.variant if row else None

    # ---- writes ---------------------------------------------------------------------------------

    def create(self, config: ExperimentConfig, actor: str | None) -> None:
        now = self.clock()
        actor = actor or self.audit.default_actor
        with self.db.write() as session:
            if session.get(ExperimentRow, config.experiment_id) is not None:
                raise ConflictError(f"experiment {config.experiment_id} already exists")
            session.add(
                ExperimentRow(
                    experiment_id=config.experiment_id,
                    name=config.name,
                    description=config.description,
                    config=config.to_dict(),
                    status=ExperimentStatus.DRAFT.value,
                    allocation_version=1,
                    created_at=now,
                    created_by=actor,
                    updated_at=now,
                )
            )
            session.flush()
            session.add(
                ExperimentAllocationRow(
                    experiment_id=config.experiment_id,
                    version=1,
                    allocation=dict(config.traffic_allocation),
                    source="initial",
                    at=now,
                    actor=actor,
                    reason="configured allocation",
                )
            )
            self._record_status(
                session, config.experiment_id, None, ExperimentStatus.DRAFT, "created", actor
            )
            self.audit.record(
                session,
                "experiment.create",
                "experiment",
                config.experiment_id,
                after=config.to_dict(),
                actor=actor,
            )

    def transition(
        self,
        experiment_id: str,
        target: ExperimentStatus,
        reason: str,
        actor: str | None,
        event: tuple[str, str, str] | None = None,
        precheck: Callable[[ExperimentInfo], None] | None = None,
    ) -> None:
        """Move along the lifecycle; ``event`` = (kind, severity, message) is emitted with it."""
        now = self.clock()
        actor = actor or self.audit.default_actor
        with self.db.write() as session:
            row = self._require(session, experiment_id, lock=True)
            current = ExperimentStatus(row.status)
            check_transition(experiment_id, current, target)
            if precheck is not None:
                precheck(_info(row, {}))
            if target is ExperimentStatus.RUNNING:
                row.started_at = now
            else:
                row.ended_at, row.stop_reason, row.stopped_by = now, reason, actor
            row.status, row.updated_at = target.value, now
            session.add(row)
            self._record_status(session, experiment_id, current, target, reason, actor)
            self.audit.record(
                session,
                f"experiment.{target.value}",
                "experiment",
                experiment_id,
                before={"status": current.value},
                after={"status": target.value},
                detail=reason,
                actor=actor,
            )
            if event is not None:
                kind, severity, message = event
                emit(
                    kind,
                    message,
                    source=SOURCE,
                    severity=severity,
                    data={"experiment_id": experiment_id, "reason": reason, "actor": actor},
                    session=session,
                )

    def add_allocation(
        self,
        experiment_id: str,
        make: Callable[
            [ExperimentInfo, list[AllocationChange]], tuple[dict[str, float], dict] | None
        ],
        source: str,
        reason: str,
        actor: str | None,
        event_kind: str,
    ) -> AllocationChange | None:
        """Append an allocation version. ``make`` sees the locked experiment (SQLite: the write
        lock; PostgreSQL: FOR UPDATE) and returns (allocation, detail), or None to skip."""
        now = self.clock()
        actor = actor or self.audit.default_actor
        with self.db.write() as session:
            row = self._require(session, experiment_id, lock=True)
            current = self._allocation(session, experiment_id, row.allocation_version)
            last = session.exec(
                select(ExperimentAllocationRow).where(
                    ExperimentAllocationRow.experiment_id == experiment_id,
                    ExperimentAllocationRow.version == row.allocation_version,
                )
            ).one()
            made = make(_info(row, current), [_change(last)])
            if made is None:
                return None
            allocation, detail = made
            version = row.allocation_version + 1
            new = ExperimentAllocationRow(
                experiment_id=experiment_id,
                version=version,
                allocation=allocation,
                source=source,
                at=now,
                actor=actor,
                reason=reason,
                detail=detail,
            )
            session.add(new)
            row.allocation_version, row.updated_at = version, now
            session.add(row)
            self.audit.record(
                session,
                f"experiment.allocation.{source}",
                "experiment",
                experiment_id,
                before={"allocation": current, "version": version - 1},
                after={"allocation": allocation, "version": version},
                detail=reason,
                actor=actor,
            )
            pretty = ", ".join(f"{k}={v:g}%" for k, v in allocation.items())
            emit(
                event_kind,
                f"experiment {experiment_id}: allocation v{version} ({source}): {pretty}",
                source=SOURCE,
                data={"experiment_id": experiment_id, "version": version, "allocation": allocation},
                session=session,
            )
            session.flush()
            return _change(new)

    def _record_status(
        self,
        session: Session,
        experiment_id: str,
        from_status: ExperimentStatus | None,
        to_status: ExperimentStatus,
        reason: str,
        actor: str,
    ) -> None:
        session.add(
            ExperimentStatusChangeRow(
                experiment_id=experiment_id,
                from_status=from_status.value if from_status else None,
                to_status=to_status.value,
                at=self.clock(),
                actor=actor,
                reason=reason,
            )
        )
