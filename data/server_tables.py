"""Serving processes announce themselves here (URL, pid, heartbeat), so a CLI or console on
the same home knows that a server serves it and where to ask, instead of loading models itself."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from data.types import UTCDateTime, utcnow


class ServerProcessRow(SQLModel, table=True):
    __tablename__ = "server_process"

    id: str = Field(primary_key=True, max_length=64)  # host:pid:random, unique per process run
    url: str = Field(max_length=500)
    hostname: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
