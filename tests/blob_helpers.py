"""Tampering with stored weights for integrity tests, wherever the context keeps them: the file
under the home, and (blobs in the database) the database blob as well, so that no verified copy
is left anywhere."""

from __future__ import annotations

from sqlalchemy import select, update

from data.blob_tables import BlobChunkRow


def flip_cached_byte(ctx, digest: str) -> None:
    """One byte of this home's file for ``digest`` (the store, or the cache of the database)."""
    path = ctx.artifacts.path(digest)
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def flip_database_byte(ctx, digest: str) -> None:
    """One byte of the database blob's first chunk."""
    with ctx.db.write() as session:
        conn = session.connection()
        where = (BlobChunkRow.digest == digest, BlobChunkRow.seq == 0)
        data = bytearray(conn.execute(select(BlobChunkRow.data).where(*where)).scalar_one())
        data[len(data) // 2] ^= 0xFF
        conn.execute(update(BlobChunkRow).where(*where).values(data=bytes(data)))


def tamper_stored_weights(ctx, digest: str) -> None:
    """Every copy of the weights this context could load: the file, and the database blob."""
    flip_cached_byte(ctx, digest)
    if ctx.weights.origin is not None:
        flip_database_byte(ctx, digest)
