"""The append-only audit log: every mutation, from any face, with who, what, when, before, after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.audit_entry import AuditEntry
from data.database import Database
from data.tables import AuditRow
from data.types import utcnow

__all__ = ["AuditEntry", "AuditLog"]


class AuditLog:
    def __init__(self, db: Database, default_actor: str) -> None:
        self.db = db
        self.default_actor = default_actor

    def record(
        self,
        session: Session,
        action: str,
        entity_type: str,
        entity_id: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        detail: str = "",
        actor: str | None = None,
    ) -> None:
        """Add an entry inside the caller's transaction, so it commits with the change itself."""
        session.add(
            AuditRow(
                at=utcnow(),
                actor=actor or self.default_actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                before=before,
                after=after,
                detail=detail,
            )
        )

    def record_now(self, action: str, entity_type: str, entity_id: str, **kwargs: Any) -> None:
        """An entry in a transaction of its own (for events such as a refused load)."""
        with self.db.write() as session:
            self.record(session, action, entity_type, entity_id, **kwargs)

    def entries(
        self,
        *,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first, or oldest first after ``after_id`` (for following the log)."""
        query = select(AuditRow)
        if entity_type:
            query = query.where(AuditRow.entity_type == entity_type)
        if entity_id:
            query = query.where(AuditRow.entity_id == entity_id)
        if action:
            query = query.where(col(AuditRow.action).startswith(action))
        if since:
            query = query.where(AuditRow.at >= since)
        if after_id is not None:
            query = query.where(col(AuditRow.id) > after_id).order_by(col(AuditRow.id))
        else:
            query = query.order_by(col(AuditRow.id).desc())
        with self.db.session() as session:
            rows = session.exec(query.limit(limit)).all()
        return [AuditEntry(**r.model_dump()) for r in rows]
