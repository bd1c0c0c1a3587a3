"""A batch the database refuses is split until every row it accepts is committed.

A group commit is all or nothing, so one refused row (a NUL PostgreSQL will not store, a value
past a column's width, a violated constraint) would fail every row it travelled with, and a
writer that retries its batch would retry it forever. ``commit_isolating`` bisects instead: each
half is committed on its own, down to single rows, and the rows still refused are returned for
the caller to set aside. Errors that say nothing about the rows (a lock, a lost connection, a
serialisation failure) propagate: the caller retries those whole.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, OperationalError

Refusal = tuple[int, Exception]  # (index of the row, why the database refused it)


def is_transient(exc: BaseException) -> bool:
    """A failure of the connection or of concurrency, not of the rows."""
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))


def commit_isolating(
    count: int,
    commit_range: Callable[[int, int], None],
    transient: Callable[[BaseException], bool] = is_transient,
) -> list[Refusal]:
    """Commit rows ``[0, count)`` with ``commit_range(start, stop)`` (one transaction each
    call); returns the rows refused on their own, in order. ``commit_range`` must be
    idempotent (ON CONFLICT DO NOTHING): after a transient error the caller retries all."""
    refused: list[Refusal] = []
    ranges = [(0, count)]
    while ranges:
        start, stop = ranges.pop()
        if start >= stop:
            continue
        try:
            commit_range(start, stop)
        except Exception as exc:
            if transient(exc):
                raise
            if stop - start == 1:
                refused.append((start, exc))
                continue
            middle = (start + stop) // 2
            ranges += [(middle, stop), (start, middle)]
    return sorted(refused, key=lambda r: r[0])


def describe(exc: BaseException) -> str:
    """The driver's one-line reason, without the statement and its parameters."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
