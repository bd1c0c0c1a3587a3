"""Which schema revision this code expects, known without importing Alembic or SQLAlchemy (the
CLI's direct read path checks it before trusting a database's tables)."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def head_revision() -> str:
    """The newest revision id: the highest-numbered file in versions/ (ids are zero-padded)."""
    names = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"))
    return names[-1].split("_", 1)[0]
