"""The one clock of stored times: timezone-aware UTC (no SQLAlchemy here, so that the domain
dataclasses that default to "now" stay cheap to import)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
