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
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import PayloadTooLargeError, ValidationError

MAX_DEPTH = 32  # nesting of the rest of the document (objects and arrays)
MAX_REST_BYTES = 64 * 1024  # what may remain once the samples are cut out
_NUMBER_BYTES = b"0123456789eE+-., \t\r\n"  # what a flat array of JSON numbers may hold
_PIECE = 1 << 20  # parsed a piece at a time, so the GIL (and the event loop) is not held long


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
    start = found.end()
    end = raw.find(b"]", start) + 1
    if end == 0:
        return None
    count = _count_values(raw, start, end)
    if count is None:
        return None
    if count > max_values:
        raise PayloadTooLargeError(f"{key!r} holds {count} values; the limit is {max_values}")
    rest = loads_bounded(raw[:start] + b"null" + raw[end:], limit=MAX_REST_BYTES)
    values = _parse_numbers(raw, start + 1, end - 1, count)
    if values is None:
        raise ValidationError(f"{key!r} must be an array of numbers")
    return SplitDocument(rest, values)


def _parse_numbers(raw: bytes, start: int, end: int, count: int) -> np.ndarray | None:
    """float32 values of ``raw[start:end]`` (comma-separated), or None if it is not exactly
    ``count`` numbers."""
    values = np.empty(count, dtype=np.float32)
    filled = 0
    while count and start < end:
        cut = raw.rfind(b",", start, min(end, start + _PIECE)) if end - start > _PIECE else -1
        stop = end if cut < 0 else cut
        try:  # numpy stops (older: warns, newer: raises) where the text stops being numbers
            piece = np.fromstring(raw[start:stop], dtype=np.float32, sep=",")
        except ValueError:
            return None
        if filled + piece.size > count:
            return None
        values[filled : filled + piece.size] = piece
        filled += piece.size
        start = stop + 1
        time.sleep(0)  # let the event loop's thread take the GIL between pieces
    return values if filled == count else None


def _count_values(raw: bytes, start: int, end: int) -> int | None:
    """How many values ``raw[start:end]`` (``[...]``) holds, by its commas; None if anything
    but number characters is inside. A piece at a time (bytes.translate deletes the number
    characters at C speed), so that the event loop's thread gets the GIL in between."""
    commas, digits = 0, False
    for i in range(start + 1, end - 1, _PIECE):
        piece = raw[i : min(i + _PIECE, end - 1)]
        if piece.translate(None, _NUMBER_BYTES):
            return None
        commas += piece.count(b",")
        digits = digits or re.search(rb"[0-9]", piece) is not None
        time.sleep(0)
    return commas + 1 if commas or digits else 0


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
