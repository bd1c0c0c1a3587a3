"""API tokens: only a SHA-256 of each token is stored, never the token itself."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    role: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)  # the first characters, to recognise a token in lists
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = ""
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
