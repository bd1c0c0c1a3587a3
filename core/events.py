"""The event stream: automated actions, alerts and lifecycle milestones that people should see.

The audit log says who changed what; events say what happened and why it matters (an experiment
stopped itself, a canary was aborted, an alert fired). Both faces read them by id, so a follower
asks only for what is newer than the last id it saw.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from core.context import get_context
from core.event_record import Event
from data.tables import EventRow
from data.types import utcnow

SEVERITIES = ("info", "warning", "critical")
__all__ = ["SEVERITIES", "Event", "emit", "recent_events"]


def emit(
    kind: str,
    message: str,
    *,
    source: str = "",
    severity: str = "info",
    data: dict[str, Any] | None = None,
    session=None,
) -> None:
    """Write an event; inside ``session`` when given, so it commits with the change it reports."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}")
    row = EventRow(
        at=utcnow(), kind=kind, severity=severity, source=source, message=message, data=data or {}
    )
    if session is not None:
        session.add(row)
        return
    with get_context().db.write() as s:
        s.add(row)


def recent_events(
    *,
    after_id: int | None = None,
    kind: str | None = None,
    source: str | None = None,
    limit: int = 100,
) -> list[Event]:
    """Newest first; or, with ``after_id``, everything newer in order (for --follow)."""
    query = select(EventRow)
    if kind:
        query = query.where(col(EventRow.kind).startswith(kind))
    if source:
        query = query.where(EventRow.source == source)
    if after_id is not None:
        query = query.where(col(EventRow.id) > after_id).order_by(col(EventRow.id))
    else:
        query = query.order_by(col(EventRow.id).desc())
    with get_context().db.session() as session:
        rows = session.exec(query.limit(limit)).all()
    return [Event(**r.model_dump()) for r in rows]
