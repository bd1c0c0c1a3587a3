"""Read-only SQLite through the standard library's driver, for reads that must start fast (the
CLI's listing commands import neither SQLAlchemy nor SQLModel). The values come back as
SQLAlchemy stored them; the decoders turn them into what the ORM returns: timezone-aware UTC
datetimes (``UTCDateTime``) and parsed JSON (``JSON`` columns)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

BUSY_TIMEOUT_S = 30.0  # as data.database: a writer holding the lock is waited for, not failed
_PLAIN_SQLITE = ("sqlite:///", "sqlite+pysqlite:///")


def sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL (``sqlite:///PATH``); None for another backend or driver,
    an in-memory database, or a URL with options or escapes (the ORM path reads those)."""
    for prefix in _PLAIN_SQLITE:
        if url.startswith(prefix):
            database = url[len(prefix) :]
            if not database or database == ":memory:" or any(c in database for c in "?%#"):
                return None
            return Path(database)
    return None


def open_read_only(path: Path, revision: str) -> sqlite3.Connection | None:
    """A read-only connection to ``path`` when that database exists and its schema is at
    ``revision``; None otherwise (no file yet, another revision, not a NightScan database, a
    file SQLite cannot open read-only): the caller then takes the path that creates and
    migrates."""
    if not path.is_file():
        return None
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        row = None
    if row is None or row[0] != revision:
        conn.close()
        return None
    return conn


def utc_datetime(value: str | None) -> datetime | None:
    """A stored DATETIME (naive UTC text) as a timezone-aware UTC datetime."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def utc_parameter(value: datetime) -> str:
    """A datetime as SQLAlchemy binds it for SQLite, so comparisons with stored values agree."""
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="microseconds")


def json_value(value: str | bytes | None) -> Any:
    """A stored JSON column (SQL NULL and JSON ``null`` both read as None)."""
    return None if value is None else json.loads(value)
