"""Content-addressed artifact store: ``<root>/sha256/<aa>/<digest>``, written atomically.

Writes go to a ``.tmp-*`` file next to the target and are renamed into place; a process killed
mid-write leaves that temp file, and ``sweep_interrupted`` (run when a context opens the store)
removes the ones no writer has touched for ``STALE_TEMP_S``. Files are hashed and copied in
``CHUNK`` pieces, so registering a large weights file costs a chunk of memory, not the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 1 << 20
TEMP_PREFIX = ".tmp-"
STALE_TEMP_S = 600.0  # a live writer touches its temp file far more often than this


class ArtifactIntegrityError(Exception):
    """The stored bytes no longer hash to the digest they were stored under. ``path`` is the
    file, or a description such as ``database blob <digest>`` for a store without files."""

    def __init__(self, expected: str, actual: str, path: Path | str) -> None:
        super().__init__(f"expected sha256 {expected}, got {actual} ({path})")
        self.expected, self.actual, self.path = expected, actual, path


class ArtifactStore:
    """The local file store: a ``BlobStore`` (data/blob_store.py) on its own, and the per-host
    cache in front of the database's blobs."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> tuple[str, int]:
        """Store bytes; returns (sha256 hex digest, size). Idempotent for identical content."""
        view = memoryview(data)
        return self._store(view[i : i + CHUNK] for i in range(0, len(view), CHUNK))

    def put_file(self, source: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's content, hashed while it is copied a chunk at a time."""
        with open(source, "rb") as fh:
            return self._store(iter(lambda: fh.read(CHUNK), b""))

    def put_verified(self, digest: str, chunks: Iterable[bytes | memoryview]) -> int:
        """Store a stream that must hash to ``digest`` (a fetch from another store); returns
        its size. On a mismatch nothing is stored and ArtifactIntegrityError names both."""
        return self._store(chunks, expected=digest)[1]

    def put_chunks(self, chunks: Iterable[bytes | memoryview]) -> tuple[str, int]:
        """Store what ``chunks`` yields, hashed and written one piece at a time."""
        return self._store(chunks)

    def _store(
        self, chunks: Iterable[bytes | memoryview], expected: str | None = None
    ) -> tuple[str, int]:
        staging = self.root / "sha256"
        staging.mkdir(parents=True, exist_ok=True)
        # temp file + fsync + rename: a crash leaves either no file or the whole file (and a
        # temp file that sweep_interrupted removes). The digest is known only at the end, so
        # the temp file lives in sha256/ and is renamed into its <aa>/ folder.
        fd, tmp = tempfile.mkstemp(dir=staging, prefix=TEMP_PREFIX)
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    h.update(chunk)
                    fh.write(chunk)
                    size += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            digest = h.hexdigest()
            if expected is not None and digest != expected:
                raise ArtifactIntegrityError(expected, digest, "the stream being cached")
            target = self.path(digest)
            if target.is_file() and self._digest_of(target) == digest:
                Path(tmp).unlink()
                return digest, size
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return digest, size

    def sweep_interrupted(self, older_than_s: float = STALE_TEMP_S) -> int:
        """Remove temp files of writes that were killed; returns how many."""
        cutoff, removed = time.time() - older_than_s, 0
        for tmp in (self.root / "sha256").glob(f"**/{TEMP_PREFIX}*"):
            try:
                if tmp.is_file() and tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:  # another process swept it first
                continue
        return removed

    def digest_of(self, digest: str) -> tuple[str, int]:
        """(sha256, size) of what is stored under ``digest``, read a chunk at a time."""
        path = self.path(digest)
        return self._digest_of(path), path.stat().st_size

    def size(self, digest: str) -> int | None:
        path = self.path(digest)
        return path.stat().st_size if path.is_file() else None

    def open(self, digest: str) -> Iterator[bytes]:
        """The stored bytes a chunk at a time, unverified (FileNotFoundError when absent)."""
        fh = self.path(digest).open("rb")  # raises here, not at the first next()
        return _chunks_of(fh)

    def read(self, digest: str) -> bytes:
        """The stored bytes, verified against their digest before anyone may use them."""
        path = self.path(digest)
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise ArtifactIntegrityError(digest, actual, path)
        return data

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    @staticmethod
    def _digest_of(path: Path) -> str:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
        return h.hexdigest()


def _chunks_of(fh) -> Iterator[bytes]:
    with fh:
        yield from iter(lambda: fh.read(CHUNK), b"")
