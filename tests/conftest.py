"""Shared fixtures: a real home folder per test, on SQLite always and on PostgreSQL when
``NIGHTSCAN_TEST_POSTGRES_URL`` is set (each test gets a schema of its own, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("NIGHTSCAN_TEST_POSTGRES_URL")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="NIGHTSCAN_TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever touches the user's real home or database."""
    monkeypatch.setenv("NIGHTSCAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NIGHTSCAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("NIGHTSCAN_ACTOR", "tester")


def _postgres_schema_url() -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'nightscan.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def ctx(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A configured core context (home folder + database), closed after the test."""
    from core import context

    monkeypatch.setenv("NIGHTSCAN_DATABASE_URL", database_url)
    c = context.configure(tmp_path / "home", database_url)
    yield c
    c.close()
    context._context = None


@pytest.fixture
def sqlite_ctx(tmp_path: Path):
    """A core context on SQLite only (for tests that need no backend matrix)."""
    from core import context

    c = context.configure(tmp_path / "home")
    yield c
    c.close()
    context._context = None
