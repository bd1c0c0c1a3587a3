"""Storage: migrations, SQLite tuning, append-only audit, concurrent writers, artifacts."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

import data.blob_tables  # noqa: F401  (on the metadata, which the migration test compares)
import data.server_tables  # noqa: F401
from data.artifacts import ArtifactIntegrityError, ArtifactStore
from data.database import Database
from data.migrate import current_revision, head_revision, upgrade


def test_migrations_reach_head_and_match_the_tables(ctx):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    assert current_revision(ctx.db) == head_revision()
    with ctx.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # Only index/constraint naming differences would be tolerable; there should be none.
    assert diff == []


def test_upgrade_is_idempotent(ctx):
    upgrade(ctx.db)
    upgrade(ctx.db)
    assert current_revision(ctx.db) == head_revision()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_ctx):
    with sqlite_ctx.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000


def test_audit_log_refuses_update_and_delete(ctx):
    ctx.audit.record_now("test.action", "thing", "x", after={"a": 1})
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            with ctx.db.write() as session:
                session.exec(text(statement))
    entries = ctx.audit.entries()
    assert [(e.action, e.actor) for e in entries] == [("test.action", "tester")]


def test_timestamps_come_back_timezone_aware_utc(ctx):
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    from data.tables import AuditRow

    with ctx.db.write() as session:
        session.add(AuditRow(at=local, action="t", entity_type="t", entity_id="t"))
    (entry,) = ctx.audit.entries()
    assert entry.at.tzinfo is not None
    assert entry.at == local
    assert entry.at.utcoffset() == timedelta(0)
    assert entry.at.tzinfo == UTC


def _write_audit_entries(url: str, worker: int, count: int) -> None:
    from core.audit import AuditLog

    db = Database(url)
    log = AuditLog(db, f"worker-{worker}")
    for i in range(count):
        log.record_now("load.write", "worker", f"{worker}-{i}")
    db.dispose()


def test_concurrent_writer_processes_never_hit_database_is_locked(ctx):
    workers, per_worker = 4, 40
    procs = [
        mp.get_context("spawn").Process(
            target=_write_audit_entries, args=(ctx.db.url, w, per_worker)
        )
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    entries = ctx.audit.entries(action="load.write", limit=1000)
    assert len({e.entity_id for e in entries}) == workers * per_worker


def test_artifact_store_is_content_addressed_and_verified(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"weights" * 1000
    digest, size = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest() and size == len(data)
    assert store.put(data) == (digest, size)  # idempotent
    assert store.read(digest) == data
    assert not list(store.path(digest).parent.glob(".tmp-*"))  # no temp leftovers

    raw = bytearray(store.path(digest).read_bytes())
    raw[10] ^= 0x01
    store.path(digest).write_bytes(bytes(raw))
    with pytest.raises(ArtifactIntegrityError) as info:
        store.read(digest)
    assert info.value.expected == digest
    assert info.value.actual == hashlib.sha256(bytes(raw)).hexdigest()
    # Re-putting the original repairs the damaged copy.
    store.put(data)
    assert store.read(digest) == data


def test_database_url_postgresql_scheme_uses_psycopg3():
    db = Database("postgresql://postgres@127.0.0.1:5432/test")
    assert db.engine.dialect.driver == "psycopg"
    db.dispose()
