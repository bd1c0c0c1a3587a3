"""The process-wide wiring: settings, database, artifact store and audit log, built lazily.

``configure()`` points everything at another home (the CLI's ``--home``, tests); the ``get_*``
service accessors of the seed API all go through ``get_context()``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from core.audit import AuditLog
from core.deployments.crash_points import crash_point
from core.settings import Settings
from data.artifacts import ArtifactStore
from data.blob_store import DatabaseBlobStore
from data.database import Database
from data.migrate import upgrade
from data.weights_store import WeightsStore

T = TypeVar("T")


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.database_url)
        upgrade(self.db)
        self.artifacts = ArtifactStore(settings.artifacts_dir)
        self.artifacts.sweep_interrupted()  # temp files of writes killed in earlier runs
        # Version weights: the files above alone, or those as this host's cache of the blobs
        # stored in the database (settings.blob_store; the default on PostgreSQL).
        origin = None
        if settings.blob_store == "database":
            origin = DatabaseBlobStore(self.db, after_chunk=lambda: crash_point("blob:chunk"))
        self.weights = WeightsStore(self.db, self.artifacts, origin, self._cache_repaired)
        self.weights.sweep_orphans()  # blobs of registrations killed before their version row
        self.audit = AuditLog(self.db, settings.actor)
        self._services: dict[str, Any] = {}
        self._lock = threading.RLock()  # a service may ask for another while being built

    def _cache_repaired(self, digest: str, detail: str) -> None:
        from core.events import emit

        host = socket.gethostname()
        with self.db.write() as session:
            emit(
                "model.cache_repaired",
                f"cached weights sha256 {digest} in the home on {host} did not verify "
                f"({detail}); fetched again from the database",
                source=host,
                severity="warning",
                data={"digest": digest},
                session=session,
            )

    def service(self, name: str, factory: Callable[[Context], T]) -> T:
        """One instance of each service per context."""
        with self._lock:
            if name not in self._services:
                self._services[name] = factory(self)
            return self._services[name]

    def close(self) -> None:
        for svc in self._services.values():
            if hasattr(svc, "close"):
                svc.close()
        self.db.dispose()


_context: Context | None = None
_context_lock = threading.Lock()


def configure(home: str | os.PathLike | None = None, database_url: str | None = None) -> Context:
    """Build a fresh context (closing the previous one) for this home and database."""
    global _context
    with _context_lock:
        if _context is not None:
            _context.close()
        _context = Context(Settings.load(home, database_url))
        return _context


def get_context() -> Context:
    global _context
    if _context is None:
        with _context_lock:
            if _context is None:
                _context = Context(Settings.load())
    return _context


def close_context() -> None:
    """Close the current context (services, database engines); the next ``get_context()``
    builds a fresh one. For a caller that must remove the database files in between."""
    global _context
    with _context_lock:
        if _context is not None:
            _context.close()
        _context = None
