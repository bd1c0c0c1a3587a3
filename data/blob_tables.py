"""Content-addressed blobs in the database (the weights of every version, shared by every host
pointed at one PostgreSQL). A blob is its header row plus its bytes in numbered chunk rows; the
header and all chunks are written in one transaction, so a blob is either whole or absent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, LargeBinary
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow


class BlobRow(SQLModel, table=True):
    __tablename__ = "blob"

    digest: str = Field(primary_key=True, max_length=64)  # sha256, hex
    size: int = Field(sa_column=Column(BigInteger(), nullable=False))
    chunk_count: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BlobChunkRow(SQLModel, table=True):
    __tablename__ = "blob_chunk"

    digest: str = Field(primary_key=True, max_length=64)
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    data: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
