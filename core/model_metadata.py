"""``ModelMetadata``: the seed's description of one registered model version."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import ValidationError
from core.lifecycle import ModelStatus
from core.semver import is_valid_version
from data.clock import utcnow

_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")


@dataclass
class ModelMetadata:
    model_id: str
    version: str
    name: str = ""
    description: str = ""
    created_at: datetime = field(default_factory=utcnow)
    status: ModelStatus = ModelStatus.TRAINING
    framework: str = "pytorch"
    architecture: str = "small_cnn"
    dataset_version: str = ""
    training_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    file_size_bytes: int = 0  # computed at registration
    checksum: str = ""  # sha256 of the stored weights, computed at registration
    tags: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model_id}:{self.version}"

    @property
    def labels(self) -> list[str]:
        return list(self.training_config.get("labels", []))

    def validate(self) -> None:
        if not _MODEL_ID.match(self.model_id or ""):
            raise ValidationError(
                f"invalid model_id {self.model_id!r}: use letters, digits, '_', '-' or '.'"
            )
        if not is_valid_version(self.version or ""):
            raise ValidationError(f"invalid version {self.version!r} for {self.model_id}")
        self.status = ModelStatus.parse(self.status)
        for name, value in self.metrics.items():
            if not isinstance(value, int | float) or value != value:
                raise ValidationError(f"metric {name!r} must be a number, got {value!r}")
        if any(not isinstance(t, str) or not t.strip() for t in self.tags):
            raise ValidationError("tags must be non-empty strings")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, keyed by the seed's field names."""
        # Shallow copies by hand: dataclasses.asdict deep-copies and dominated `list --json`.
        return {
            "model_id": self.model_id,
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "status": ModelStatus.parse(self.status).value,
            "framework": self.framework,
            "architecture": self.architecture,
            "dataset_version": self.dataset_version,
            "training_config": dict(self.training_config),
            "metrics": dict(self.metrics),
            "file_size_bytes": self.file_size_bytes,
            "checksum": self.checksum,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMetadata:
        """The inverse of ``to_dict`` (what a console attached to a server receives)."""
        return cls(
            **{k: d[k] for k in _FIELDS if k in d and k not in ("created_at", "status")},
            created_at=datetime.fromisoformat(d["created_at"]),
            status=ModelStatus.parse(d["status"]),
        )


_FIELDS = tuple(ModelMetadata.__dataclass_fields__)


def parse_model_ref(ref: str) -> tuple[str, str]:
    """``wildlife_detector:v2.1.0`` -> (``wildlife_detector``, ``v2.1.0``)."""
    model_id, sep, version = (ref or "").strip().rpartition(":")
    if not sep or not model_id or not version:
        raise ValidationError(f"expected MODEL_ID:VERSION, got {ref!r}")
    return model_id, version
