"""One entry of the audit log as every face reads it (no SQL here: the CLI's direct read path
builds these without SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["at"] = self.at.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEntry:
        return cls(**{**d, "at": datetime.fromisoformat(d["at"])})
