"""Numbers out of a large JSON body without a Python object per number.

A waveform sent as JSON (``{"audio": [0.1, ...]}`` to /predict, ``"data": [...]`` in an Open
Inference Protocol request) can hold tens of millions of numbers; ``json.loads`` would make a
Python float of each (about 30 bytes apiece). Here the one numeric array under a key is cut out
of the raw bytes, its values are counted by their separators and refused past the limit before
anything is allocated, and numpy parses them straight into float32. What is left of the document
(small) goes through ``json.loads`` with its depth bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import PayloadTooLargeError, ValidationError

MAX_DEPTH = 32  # nesting of the rest of the document (objects and arrays)
MAX_REST_BYTES = 64 * 1024  # what may remain once the samples are cut out
# Only digits, signs, dots, exponents, separators, whitespace and brackets: no strings inside.
_NUMERIC_ARRAY = re.compile(rb"\[[0-9eE+\-.,\s]*\]")


@dataclass(frozen=True)
class SplitDocument:
    rest: Any  # the parsed document, with the array replaced by None
    values: np.ndarray  # float32, one dimension


def split_numeric_array(raw: bytes, key: str, max_values: int) -> SplitDocument | None:
    """The flat numeric array under the first ``"key":`` and the rest of the document, or None
    when there is no such array (the caller then parses normally, if the body is small)."""
    found = re.search(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*(?=\[)', raw)
    if found is None:
        return None
    span = _NUMERIC_ARRAY.match(raw, found.end())
    if span is None:
        return None
    start, end = span.span()
    count = _count_values(raw, start, end)
    if count > max_values:
        raise PayloadTooLargeError(f"{key!r} holds {count} values; the limit is {max_values}")
    rest = loads_bounded(raw[:start] + b"null" + raw[end:], limit=MAX_REST_BYTES)
    try:  # numpy stops (older: warns, newer: raises) where the text stops being numbers
        values = np.fromstring(raw[start + 1 : end - 1], dtype=np.float32, sep=",")
    except ValueError:
        values = None
    if values is None or values.size != count:
        raise ValidationError(f"{key!r} must be an array of numbers")
    return SplitDocument(rest, values)


def _count_values(raw: bytes, start: int, end: int) -> int:
    commas = raw.count(b",", start, end)
    if commas == 0 and re.search(rb"[0-9]", raw[start:end]) is None:
        return 0  # []
    return commas + 1


def loads_bounded(raw: bytes, limit: int | None = None) -> Any:
    """``json.loads`` for client bytes: a ValidationError (never RecursionError) for a document
    nested deeper than MAX_DEPTH or longer than ``limit``."""
    if limit is not None and len(raw) > limit:
        raise ValidationError(
            f"the JSON document is too large apart from its samples ({len(raw)} bytes)"
        )
    if _depth(raw) > MAX_DEPTH:
        raise ValidationError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"invalid JSON: {str(exc).splitlines()[0][:200]}") from None


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _depth(raw: bytes) -> int:
    """How deep objects and arrays nest, strings ignored (numpy over the bytes, no recursion)."""
    bare = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    step = (bare == ord("[")).astype(np.int32) + (bare == ord("{"))
    step -= (bare == ord("]")) + (bare == ord("}"))
    return int(np.cumsum(step).max(initial=0))
