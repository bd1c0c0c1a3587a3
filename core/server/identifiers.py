"""Identifiers as the edge accepts them: 1..200 characters, no control characters (NUL among
them: PostgreSQL refuses it in text, and a refused row must never reach a writer's batch).

One definition for path, query and body fields, so that ``/openapi.json`` states the rule and a
client that follows the schema is never refused for an identifier.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import StringConstraints

MAX_ID_LENGTH = 200
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
TEXT = r"^[^\x00]*$"  # free text (reasons): any character but NUL
MAX_ROW_ID = 2**63 - 1  # SQL BIGINT: larger ids and offsets overflow the driver

# MODEL_ID:VERSION, split at the last colon (core.model_metadata.parse_model_ref).
_C = r"[^\x00-\x1f\x7f"  # a character class without control characters, continued below
MODEL_REF = rf"^{_C}]*{_C}\s:]{_C}]*:{_C}:]*{_C}\s:]{_C}:]*$"


def spelled_both_ways(values: Iterable[str]) -> Any:
    """A Literal of each value in lower and upper case (the core parses either)."""
    names = [v for value in values for v in (value.lower(), value.upper())]
    return Literal[tuple(names)]  # type: ignore[valid-type]


Id = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE)]
QueryId = Annotated[str | None, Query(max_length=MAX_ID_LENGTH, pattern=PRINTABLE)]
BodyId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=PRINTABLE)
]


def valid_identifier(value: str) -> bool:
    """The same rule, for identifiers that arrive outside the schema (headers)."""
    return 0 < len(value) <= MAX_ID_LENGTH and not any(c < " " or c == "\x7f" for c in value)


def reject_nul(value: object, where: str = "body") -> None:
    """PostgreSQL stores no NUL in text: refuse it (422) in a free-form JSON body."""
    from core.errors import ValidationError

    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            raise ValidationError(f"{where} holds a NUL character")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
