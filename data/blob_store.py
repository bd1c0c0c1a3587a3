"""Where version weights live: the ``BlobStore`` seam and its database implementation.

Two stores implement the protocol: ``ArtifactStore`` (data/artifacts.py, files under the home)
and ``DatabaseBlobStore`` (here: the ``blob`` and ``blob_chunk`` tables, data/blob_tables.py),
the built-in when the database is PostgreSQL, so that every host pointed at one database can
fetch every version's weights. Both are content-addressed by sha256 and stream: a blob is
written and read ``CHUNK`` bytes at a time, never held whole in memory (``read`` excepted, which
returns the bytes to a caller that asked for all of them).

A database blob is written in one transaction (header row and every chunk row), so it is
either whole or absent; a process killed mid-write leaves nothing. Readers verify the sha256 of
what they read before anyone uses it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import delete, exists, insert, select
from sqlmodel import Session

from data.artifacts import CHUNK as FILE_CHUNK
from data.artifacts import ArtifactIntegrityError
from data.blob_tables import BlobChunkRow, BlobRow
from data.database import Database
from data.tables import ModelVersionRow
from data.types import utcnow

CHUNK = 4 << 20  # bytes per chunk row: large enough for few round trips, small enough to stream
ORPHAN_GRACE_S = 3600.0  # a blob no version names is swept only after this (a registration
# in flight writes its blob first and its version row a moment later)


class BlobMissingError(FileNotFoundError):
    """No blob is stored under this digest."""

    def __init__(self, digest: str, where: str) -> None:
        super().__init__(f"no blob sha256 {digest} in {where}")
        self.digest = digest


@runtime_checkable
class BlobStore(Protocol):
    """A content-addressed store of immutable blobs, keyed by their sha256 (hex)."""

    kind: str

    def put(self, data: bytes) -> tuple[str, int]:
        """Store bytes; (digest, size). Idempotent for identical content."""
        ...

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's content, streamed; (digest, size)."""
        ...

    def open(self, digest: str) -> Iterator[bytes]:
        """The stored bytes a chunk at a time, unverified; FileNotFoundError when absent."""
        ...

    def read(self, digest: str) -> bytes:
        """The whole blob, verified (ArtifactIntegrityError on a mismatch)."""
        ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int | None: ...

    def digest_of(self, digest: str) -> tuple[str, int]:
        """(actual sha256, size) of what is stored under ``digest``, streamed."""
        ...

    def delete(self, digest: str) -> None: ...


class DatabaseBlobStore:
    """Blobs in the database: ``blob`` (digest, size, chunk_count) and ``blob_chunk`` rows.

    ``after_chunk`` is called after each chunk row is written, inside the transaction: the crash
    tests kill the process there to prove that a half-written blob is never visible.
    """

    kind = "database"

    def __init__(
        self,
        db: Database,
        chunk_size: int = CHUNK,
        after_chunk: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.chunk_size = chunk_size
        self.after_chunk = after_chunk

    # ---- writing --------------------------------------------------------------------------

    def put(self, data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        view = memoryview(data)
        step = self.chunk_size
        return digest, self.put_chunks(
            digest, (view[i : i + step] for i in range(0, len(view), step))
        )

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        h = hashlib.sha256()
        with open(source, "rb") as fh:  # first pass: the digest the rows are keyed by
            for chunk in iter(lambda: fh.read(FILE_CHUNK), b""):
                h.update(chunk)
        digest = h.hexdigest()
        with open(source, "rb") as fh:  # second pass, verified again while written
            return digest, self.put_chunks(digest, iter(lambda: fh.read(FILE_CHUNK), b""))

    def put_chunks(self, digest: str, chunks: Iterable[bytes | memoryview]) -> int:
        """Store a stream that must hash to ``digest``; returns its size. One transaction:
        on a mismatch (or any error, or a kill) nothing is stored. Already stored: a no-op."""
        with self.db.write() as session:
            if self.db.engine.dialect.name == "postgresql":
                # Two hosts registering the same weights at once: the second waits, then sees it.
                session.execute(_advisory_lock(digest))
            stored = session.get(BlobRow, digest)
            if stored is not None:
                return stored.size
            h, size, seq = hashlib.sha256(), 0, 0
            for piece in _rechunk(chunks, self.chunk_size):
                h.update(piece)
                session.execute(insert(BlobChunkRow).values(digest=digest, seq=seq, data=piece))
                size += len(piece)
                seq += 1
                self.after_chunk()
            actual = h.hexdigest()
            if actual != digest:
                raise ArtifactIntegrityError(digest, actual, "the stream being stored")
            session.execute(
                insert(BlobRow).values(
                    digest=digest, size=size, chunk_count=seq, created_at=utcnow()
                )
            )
        return size

    # ---- reading --------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        return self.size(digest) is not None

    def size(self, digest: str) -> int | None:
        with self.db.session() as session:
            return session.execute(select(BlobRow.size).where(BlobRow.digest == digest)).scalar()

    def open(self, digest: str) -> Iterator[bytes]:
        with self.db.session() as session:
            count = session.execute(
                select(BlobRow.chunk_count).where(BlobRow.digest == digest)
            ).scalar()
        if count is None:
            raise BlobMissingError(digest, "the database")
        return self._chunks(digest, count)

    def _chunks(self, digest: str, count: int) -> Iterator[bytes]:
        # One row per query: the driver never buffers more than one chunk.
        with self.db.session() as session:
            for seq in range(count):
                data = session.execute(
                    select(BlobChunkRow.data).where(
                        BlobChunkRow.digest == digest, BlobChunkRow.seq == seq
                    )
                ).scalar()
                if data is None:  # deleted under the reader
                    raise BlobMissingError(digest, "the database")
                yield bytes(data)

    def read(self, digest: str) -> bytes:
        data = b"".join(self.open(digest))
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactIntegrityError(digest, actual, f"database blob {digest}")
        return data

    def digest_of(self, digest: str) -> tuple[str, int]:
        h, size = hashlib.sha256(), 0
        for chunk in self.open(digest):
            h.update(chunk)
            size += len(chunk)
        return h.hexdigest(), size

    # ---- holding and deleting -------------------------------------------------------------

    def hold(self, session: Session, digest: str) -> bool:
        """Inside a write transaction that will name ``digest`` (a version row): whether the
        blob is stored, locked so that a concurrent delete waits for this transaction and then
        sees the row that names it."""
        found = session.execute(
            select(BlobRow.digest).where(BlobRow.digest == digest).with_for_update(read=True)
        ).first()
        return found is not None

    def delete(self, digest: str) -> None:
        with self.db.write() as session:
            _delete_rows(session, digest)

    def delete_unreferenced(self, digest: str) -> bool:
        """Delete the blob unless a version names it; whether it was deleted. The blob row is
        locked first, so a registration holding it (``hold``) is waited for and then seen."""
        with self.db.write() as session:
            locked = session.execute(
                select(BlobRow.digest).where(BlobRow.digest == digest).with_for_update()
            ).first()
            if locked is None:
                return False
            if _referenced(session, digest):
                return False
            _delete_rows(session, digest)
            return True

    def sweep_orphans(self, older_than_s: float = ORPHAN_GRACE_S) -> int:
        """Delete blobs that no version names and that are older than the grace period (a
        registration killed between its blob and its row); returns how many."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        with self.db.session() as session:
            candidates = session.execute(
                select(BlobRow.digest).where(
                    BlobRow.created_at < cutoff,
                    ~exists().where(ModelVersionRow.checksum == BlobRow.digest),
                )
            ).all()
        return sum(self.delete_unreferenced(d) for (d,) in candidates)


def _referenced(session: Session, digest: str) -> bool:
    return (
        session.execute(
            select(ModelVersionRow.id).where(ModelVersionRow.checksum == digest).limit(1)
        ).first()
        is not None
    )


def _delete_rows(session: Session, digest: str) -> None:
    session.execute(delete(BlobChunkRow).where(BlobChunkRow.digest == digest))
    session.execute(delete(BlobRow).where(BlobRow.digest == digest))


def _advisory_lock(digest: str):
    from sqlalchemy import func

    return select(func.pg_advisory_xact_lock(int(digest[:15], 16)))


def _rechunk(chunks: Iterable[bytes | memoryview], size: int) -> Iterator[bytes]:
    """Pieces of exactly ``size`` bytes (the last one shorter), whatever the input's pieces."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)
