"""The registry's view of weights: the local file store, alone or as a per-host cache in front
of the database's blobs.

With ``origin=None`` (SQLite, or ``blob_store = "local"``) this is the artifact store under the
home, exactly as before. With a ``DatabaseBlobStore`` origin (PostgreSQL's default):

- ``put``/``put_file`` write the local cache file first (atomic, hashed while copied), then the
  database blob, streamed from that file in one transaction. The caller writes the version row
  only afterwards, holding the blob (``hold``), so a row never names a blob that is not stored;
  a blob whose row never came is an orphan that ``sweep_orphans`` removes after a grace period.
- ``read`` verifies the cache file's sha256 before every load; on a miss or a mismatch it
  streams the blob from the database into the cache (temp file, verified, renamed) and reads
  that. A database blob that does not hash to its digest is refused, never cached.
- ``delete_unused`` removes the blob from the database (when no version names it) and from
  this host's cache; other hosts' cache files are left, harmless, until their homes are cleaned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from data.artifacts import ArtifactIntegrityError, ArtifactStore
from data.blob_store import DatabaseBlobStore
from data.database import Database
from data.tables import ModelVersionRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheCheck:
    """What ``verify`` found in this host's cache: ``ok``, ``fetched`` (was missing) or
    ``repaired`` (did not hash to its digest, fetched again); ``local`` without an origin."""

    status: str


class WeightsStore:
    def __init__(
        self,
        db: Database,
        cache: ArtifactStore,
        origin: DatabaseBlobStore | None = None,
        on_repair: Callable[[str, str], None] = lambda _digest, _detail: None,
    ) -> None:
        """``on_repair(digest, detail)`` is told when a cache file did not verify and was
        fetched again (the context turns it into a ``model.cache_repaired`` event)."""
        self.db = db
        self.cache = cache
        self.origin = origin
        self.on_repair = on_repair

    @property
    def kind(self) -> str:
        return "local" if self.origin is None else self.origin.kind

    # ---- writing --------------------------------------------------------------------------

    def put(self, data: bytes) -> tuple[str, int]:
        digest, size = self.cache.put(data)
        self._publish(digest)
        return digest, size

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        digest, size = self.cache.put_file(source)
        self._publish(digest)
        return digest, size

    def put_chunks(self, chunks: Iterable[bytes | memoryview]) -> tuple[str, int]:
        digest, size = self.cache.put_chunks(chunks)
        self._publish(digest)
        return digest, size

    def _publish(self, digest: str) -> None:
        if self.origin is not None and not self.origin.exists(digest):
            self.origin.put_chunks(digest, self.cache.open(digest))

    def hold(self, session: Session, digest: str) -> bool:
        """Inside the transaction that writes a version row naming ``digest``: whether the
        weights are stored where every host can read them (locked until the commit)."""
        if self.origin is None:
            return self.cache.exists(digest)
        return self.origin.hold(session, digest)

    # ---- reading --------------------------------------------------------------------------

    def read(self, digest: str) -> bytes:
        """The weights, verified. FileNotFoundError when stored nowhere; ArtifactIntegrityError
        when the authoritative copy does not hash to ``digest``."""
        if self.origin is None:
            return self.cache.read(digest)
        try:
            return self.cache.read(digest)
        except FileNotFoundError:
            pass
        except ArtifactIntegrityError as exc:
            log.warning("cached weights %s did not verify (%s); fetching them again", digest, exc)
            self.fetch(digest)
            self.on_repair(digest, f"actual sha256 {exc.actual}")
            return self.cache.read(digest)
        self.fetch(digest)
        return self.cache.read(digest)

    def fetch(self, digest: str) -> int:
        """Stream the database blob into this host's cache, verified; returns its size."""
        assert self.origin is not None
        try:
            return self.cache.put_verified(digest, self.origin.open(digest))
        except ArtifactIntegrityError as exc:
            raise ArtifactIntegrityError(digest, exc.actual, f"database blob {digest}") from None

    def digest_of(self, digest: str) -> tuple[str, int]:
        """(actual sha256, size) of the authoritative copy, streamed."""
        store = self.cache if self.origin is None else self.origin
        return store.digest_of(digest)

    def verify_cache(self, digest: str) -> CacheCheck:
        """Check (and repair) this host's cache file against ``digest``."""
        if self.origin is None:
            return CacheCheck("local")
        if not self.cache.exists(digest):
            self.fetch(digest)
            return CacheCheck("fetched")
        actual = self.cache.digest_of(digest)[0]
        if actual == digest:
            return CacheCheck("ok")
        log.warning("cached weights %s did not verify; fetching them again", digest)
        self.fetch(digest)
        self.on_repair(digest, f"actual sha256 {actual}")
        return CacheCheck("repaired")

    def where(self, path: Path | str, home: Path) -> str:
        """A location for an error message: a file relative to the home, or the store's words."""
        if isinstance(path, Path):
            return f"{os.path.relpath(path, home)} (in the home)"
        return path

    # ---- deleting -------------------------------------------------------------------------

    def delete_unused(self, digest: str) -> bool:
        """Delete the weights unless a version still names them; whether they were deleted."""
        if self.origin is not None and self.origin.exists(digest):
            if not self.origin.delete_unreferenced(digest):
                return False
        elif self._referenced(digest):
            return False
        self.cache.delete(digest)
        return True

    def _referenced(self, digest: str) -> bool:
        with self.db.session() as session:
            found = session.exec(
                select(ModelVersionRow.id).where(ModelVersionRow.checksum == digest).limit(1)
            ).first()
        return found is not None

    def publish_from_cache(self, digest: str) -> bool:
        """Copy a verified cache file into the database when the blob is missing there (weights
        registered on PostgreSQL before blobs were stored in it); whether it was copied."""
        if self.origin is None or self.origin.exists(digest) or not self.cache.exists(digest):
            return False
        if self.cache.digest_of(digest)[0] != digest:
            return False
        self.origin.put_chunks(digest, self.cache.open(digest))
        return True

    def sweep_orphans(self) -> int:
        """Blobs of registrations killed between their blob and their row (database only)."""
        return 0 if self.origin is None else self.origin.sweep_orphans()
