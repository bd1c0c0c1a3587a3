"""The event stream and the audit log, both followable by id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from core.server.deps import Audit
from core.server.identifiers import MAX_ROW_ID, PRINTABLE
from core.server.problems import AUTH_ERRORS
from core.server.resources import AuditEntryView, EventView
from core.server.security import Viewer

router = APIRouter(tags=["events"])


@router.get("/events", response_model=list[EventView])
def events(
    after_id: int | None = Query(
        None, ge=0, le=MAX_ROW_ID, description="Only events newer than this id."
    ),
    kind: str | None = Query(
        None, max_length=100, pattern=PRINTABLE, description="Kind prefix, e.g. alert."
    ),
    source: str | None = Query(None, max_length=300, pattern=PRINTABLE),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """The event stream (alerts, automated actions, milestones): newest first, or oldest first
    after ``after_id`` so that a follower asks only for what it has not seen."""
    from core.events import recent_events

    found = recent_events(after_id=after_id, kind=kind, source=source, limit=limit)
    return [e.to_dict() for e in found]


@router.get("/audit", response_model=list[AuditEntryView], responses=AUTH_ERRORS)
def audit(
    _who: Viewer,
    log: Audit,
    after_id: int | None = Query(
        None, ge=0, le=MAX_ROW_ID, description="Only entries newer than this id."
    ),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """The audit log (who changed what); newest first, or oldest first after ``after_id``.
    Needs a token (viewer or above): it names people and tokens."""
    return [e.to_dict() for e in log.entries(after_id=after_id, limit=limit)]
