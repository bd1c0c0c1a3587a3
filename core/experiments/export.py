"""Streaming export of raw results (CSV or JSON Lines), in the order they were committed."""

from __future__ import annotations

import csv
import json
import os
from contextlib import ExitStack
from typing import IO

from sqlalchemy import select

from core.errors import ValidationError
from data.database import Database
from data.experiment_tables import ExperimentResultRow

FORMATS = ("csv", "jsonl")
COLUMNS = ("experiment_id", "request_id", "variant", "metric", "value", "recorded_at")
_PAGE = 10_000


def export_results(
    db: Database, experiment_id: str, fmt: str, out: IO[str] | str | os.PathLike
) -> int:
    """Write every raw result of the experiment to ``out`` (a path or text stream); row count."""
    if fmt not in FORMATS:
        raise ValidationError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
    t = ExperimentResultRow.__table__
    query = (
        select(*(t.c[c] for c in COLUMNS))
        .where(t.c.experiment_id == experiment_id)
        .order_by(t.c.id)
        .execution_options(yield_per=_PAGE)
    )
    count = 0
    with ExitStack() as stack:
        if isinstance(out, str | os.PathLike):
            try:
                stream = stack.enter_context(open(out, "w", newline="", encoding="utf-8"))
            except OSError as exc:
                raise ValidationError(f"cannot write {out}: {exc.strerror}") from None
        else:
            stream = out
        writer = csv.writer(stream) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(COLUMNS)
        session = stack.enter_context(db.session())
        for row in session.execute(query):
            record = dict(zip(COLUMNS, row, strict=True))
            record["recorded_at"] = record["recorded_at"].isoformat()
            record["value"] = float(record["value"])
            if writer is not None:
                writer.writerow([record[c] for c in COLUMNS])
            else:
                stream.write(json.dumps(record) + "\n")
            count += 1
    return count
