"""Model lifecycle: the statuses and which transitions between them are allowed."""

from __future__ import annotations

from enum import StrEnum

from core.errors import InvalidTransitionError, ValidationError


class ModelStatus(StrEnum):
    TRAINING = "training"
    VALIDATION = "validation"
    TESTING = "testing"
    DEPLOYED = "deployed"
    RETIRED = "retired"
    FAILED = "failed"

    @classmethod
    def parse(cls, value: str | ModelStatus) -> ModelStatus:
        """Accepts ``deployed``, ``DEPLOYED`` or the enum itself."""
        if isinstance(value, ModelStatus):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValidationError(f"unknown status {value!r}; expected one of: {names}") from None


S = ModelStatus
# RETIRED -> DEPLOYED exists for rollback to the last good version; FAILED -> TRAINING to retrain.
TRANSITIONS: dict[ModelStatus, frozenset[ModelStatus]] = {
    S.TRAINING: frozenset({S.VALIDATION, S.FAILED}),
    S.VALIDATION: frozenset({S.TESTING, S.DEPLOYED, S.TRAINING, S.FAILED, S.RETIRED}),
    S.TESTING: frozenset({S.DEPLOYED, S.VALIDATION, S.FAILED, S.RETIRED}),
    S.DEPLOYED: frozenset({S.RETIRED, S.TESTING, S.FAILED}),
    S.RETIRED: frozenset({S.TESTING, S.DEPLOYED}),
    S.FAILED: frozenset({S.TRAINING, S.RETIRED}),
}


def allowed_transitions(current: ModelStatus) -> list[ModelStatus]:
    return sorted(TRANSITIONS[current], key=list(ModelStatus).index)


def check_transition(model: str, current: ModelStatus, target: ModelStatus) -> None:
    if target in TRANSITIONS[current]:
        return
    allowed = ", ".join(s.value.upper() for s in allowed_transitions(current))
    raise InvalidTransitionError(
        f"{model}: cannot go from {current.value.upper()} to {target.value.upper()}; "
        f"allowed from {current.value.upper()}: {allowed}"
    )
