"""Content-addressed artifact store: ``<root>/sha256/<aa>/<digest>``, written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class ArtifactIntegrityError(Exception):
    """The bytes on disk no longer hash to the digest they were stored under."""

    def __init__(self, expected: str, actual: str, path: Path) -> None:
        super().__init__(f"expected sha256 {expected}, got {actual} ({path})")
        self.expected, self.actual, self.path = expected, actual, path


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        return self.root / "sha256" / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> tuple[str, int]:
        """Store bytes; returns (sha256 hex digest, size). Idempotent for identical content."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.is_file() and self._digest_of(target) == digest:
            return digest, len(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        # temp file + fsync + rename: a crash leaves either no file or the whole file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return digest, len(data)

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
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
