"""One event of the event stream as every face reads it (no SQL here: the CLI's direct read path
builds these without SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    severity: str
    source: str
    message: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["at"] = self.at.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(**{**d, "at": datetime.fromisoformat(d["at"])})
