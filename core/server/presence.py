"""Which servers serve this home: each serving process writes a row (its URL) and refreshes it
every few seconds; a CLI reads the fresh ones and asks a server instead of loading models itself.
A process killed without a goodbye is simply not fresh any more after ``FRESH_FOR_S``.

Import-light on purpose (SQLModel only): ``nightscan deployment health`` reads it at start-up."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, delete, select

from data.database import Database
from data.server_tables import ServerProcessRow
from data.types import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
FRESH_FOR_S = 3 * HEARTBEAT_S  # two missed heartbeats and the server counts as gone
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class ServerRecord:
    url: str
    hostname: str
    pid: int
    started_at: datetime
    seen_at: datetime

    @property
    def local(self) -> bool:
        """On this machine (a loopback URL of another machine's server means nothing here)."""
        return self.hostname == socket.gethostname()


def live_servers(db: Database, now: datetime | None = None) -> list[ServerRecord]:
    """Servers that announced themselves within ``FRESH_FOR_S``, most recently seen first."""
    cutoff = (now or utcnow()) - timedelta(seconds=FRESH_FOR_S)
    query = (
        select(ServerProcessRow)
        .where(col(ServerProcessRow.seen_at) >= cutoff)
        .order_by(col(ServerProcessRow.seen_at).desc())
    )
    with db.session() as session:
        rows = session.exec(query).all()
    return [ServerRecord(r.url, r.hostname, r.pid, r.started_at, r.seen_at) for r in rows]


def reachable_server(db: Database) -> ServerRecord | None:
    """The fresh server a CLI on this machine should ask, or None (then it works in-process)."""
    for server in live_servers(db):
        if server.local or not _is_loopback(server.url):
            return server
    return None


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class ServerPresence:
    """The heartbeat of one serving process: ``start()`` announces, ``stop()`` withdraws."""

    def __init__(self, db: Database, url: str, interval_s: float = HEARTBEAT_S) -> None:
        self.db = db
        self.url = url
        self.interval_s = interval_s
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ServerPresence:
        now = utcnow()
        with self.db.write() as session:
            session.add(
                ServerProcessRow(
                    id=self.id,
                    url=self.url,
                    hostname=socket.gethostname()[:255],
                    pid=os.getpid(),
                    started_at=now,
                    seen_at=now,
                )
            )
            # Rows of processes long gone (killed without a goodbye) are forgotten here.
            old = datetime.now(UTC) - FORGET_AFTER
            session.exec(delete(ServerProcessRow).where(col(ServerProcessRow.seen_at) < old))
        self._thread = threading.Thread(target=self._beat, name="server-presence", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self.db.write() as session:
                    row = session.get(ServerProcessRow, self.id)
                    if row is not None:
                        row.seen_at = utcnow()
                        session.add(row)
            except Exception:  # a busy or briefly unreachable database: the next beat retries
                log.warning("server heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval_s + 5)
            self._thread = None
        try:
            with self.db.write() as session:
                session.exec(delete(ServerProcessRow).where(ServerProcessRow.id == self.id))
        except Exception:  # at exit the database may be gone; the row goes stale by itself
            log.warning("could not withdraw the server's presence", exc_info=True)
