"""Model quality at 1,000,000 logged predictions: how long a quality report takes (the SQL over
the hourly counts plus the statistics), all-time and over rolling windows, against the naive
GROUP BY over every prediction. Appends to RESULTS.md.

The predictions (2 versions, 4 classes, 30 % labelled, spread over 7 days) are bulk-inserted
through the driver and the counts rebuilt by ``rollup.rebuild`` (the same counts the serving
path keeps, tests/core/quality/test_quality_store.py); the write path itself is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from machine import RESULTS, cpu_model
from rich.console import Console
from rich.table import Table

console = Console()
LABELS = ("owl", "hawk", "sparrow", "robin")
DEP = "wildlife_detector_prod"
VERSIONS = ("wildlife_detector:v2.0.0", "wildlife_detector:v2.1.0")


def fill(db, n: int, days: float, now: datetime) -> float:
    """Insert ``n`` predictions ending at ``now``; returns rows/s including the rebuild."""
    from core.quality import rollup

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    offsets = np.sort(rng.uniform(0, days * 86400, n))[::-1]
    version = rng.integers(0, 2, n)
    true = rng.choice(4, size=n, p=[0.1, 0.2, 0.5, 0.2])
    pred = np.where(rng.random(n) < 0.8, true, rng.integers(0, 4, n))
    conf = rng.beta(5, 2, n)
    labelled = rng.random(n) < 0.3
    delay = rng.exponential(3600, n)
    labels = json.dumps(list(LABELS))
    batch = 100_000
    with db.write() as session:
        cursor = session.connection().connection.driver_connection.cursor()
        for lo in range(0, n, batch):
            rows = []
            for i in range(lo, min(n, lo + batch)):
                at = now - timedelta(seconds=float(offsets[i]))
                lab = bool(labelled[i])
                rows.append(
                    (
                        f"r{i}", DEP, VERSIONS[version[i]], labels, LABELS[pred[i]],
                        at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"),
                        pred[i] == true[i] if lab else None, float(conf[i]),
                        rollup.confidence_bin(float(conf[i])),
                        LABELS[true[i]] if lab else None, float(delay[i]) if lab else None,
                    )
                )  # fmt: skip
            cursor.executemany(
                "INSERT INTO prediction (request_id, deployment_id, model_ref, labels, "
                "predicted_class, at, correct, confidence, confidence_bin, true_label, "
                "label_delay_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        rollup.rebuild(session)
    return n / (time.perf_counter() - started)


def time_ms(fn, runs: int) -> tuple[float, float]:
    fn()  # warm the page cache and SQLAlchemy's statement cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def write_path(db, n: int) -> float:
    """Predictions/s through PredictionLog.flush (insert + count upserts in one transaction)."""
    from core.deployments.prediction_log import Prediction, PredictionLog

    log = PredictionLog(db)
    rng = np.random.default_rng(1)
    for i in range(n):
        log._pending.append(  # what remember() queues, without starting the flush thread
            (
                Prediction(
                    f"w{i}", "write_bench", VERSIONS[i % 2], LABELS, LABELS[i % 4],
                    confidence=float(rng.random()),
                ),
                datetime.now(UTC),
            )
        )  # fmt: skip
        if len(log._pending) == 2000:
            if i == 1999:
                started = time.perf_counter()
            log.flush()
    log.flush()
    return (n - 2000) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    import core
    from core.quality.service import QualityService
    from core.quality.store import QualityStore, Scope

    load_before = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="nightscan-quality-"))
    rows: list[tuple[str, str, str]] = []
    try:
        db = core.configure(home).db
        now = datetime.now(UTC)
        rate = fill(db, args.predictions, args.days, now)
        console.print(f"loaded {args.predictions:,} predictions at {rate:,.0f}/s")
        service, store = QualityService(db), QualityStore(db)
        scope = Scope(deployment_id=DEP)
        with db.session() as s:
            count_rows = sum(
                s.execute(__import__("sqlalchemy").text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("quality_confusion_count", "quality_confidence_count")
            )
        total = sum(g.predictions for g in store.counts(scope).values())
        assert total == args.predictions, total
        cases = [
            ("quality report, all-time (SQL + statistics + drift look)", None),
            ("quality report, rolling 1 h", timedelta(hours=1)),
            ("quality report, rolling 24 h", timedelta(hours=24)),
            (
                "quality report, rolling 90 min (a partial hour from raw rows)",
                timedelta(minutes=90),
            ),
        ]
        for name, window in cases:
            median, worst = time_ms(lambda w=window: service.report(scope, w), args.runs)
            rows.append((f"{name}, {args.predictions:,} predictions", f"{median:.1f} ms",
                         f"goal <= 200 ms; max {worst:.1f} ms ({args.runs} runs)"))  # fmt: skip
            console.print(f"{name}: median {median:.1f} ms")
        median, worst = time_ms(lambda: store.counts(scope), args.runs)
        rows.append(("the SQL alone (counts, all-time)", f"{median:.1f} ms",
                     f"max {worst:.1f} ms; {count_rows:,} count rows"))  # fmt: skip
        naive = (
            "SELECT model_ref, predicted_class, true_label, count(*) FROM prediction "
            "WHERE deployment_id = :d GROUP BY model_ref, predicted_class, true_label"
        )
        from sqlalchemy import text

        def raw() -> None:
            with db.session() as s:
                s.execute(text(naive), {"d": DEP}).all()

        median, worst = time_ms(raw, 2)
        rows.append(("for contrast: GROUP BY over every prediction (confusion only)",
                     f"{median:.1f} ms", f"max {worst:.1f} ms (2 runs)"))  # fmt: skip
        rate = write_path(db, 20_000)
        rows.append(("write path: PredictionLog.flush with count upserts (2,000 per flush)",
                     f"{rate:,.0f} /s", "predictions per second, one writer"))  # fmt: skip
        console.print(f"write path: {rate:,.0f} predictions/s")
        core.context.get_context().close()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    table = Table(title="Model quality", header_style="bold")
    for column, justify in (("measure", "left"), ("result", "right"), ("notes", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.no_append:
        return
    import sqlite3

    command = " ".join([".venv/bin/python", "benchmarks/quality_bench.py", *sys.argv[1:]])
    lines = [
        "",
        f"## Model quality ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; "
        f"SQLite {sqlite3.sqlite_version}",
        f"- command: `{command}`",
        f"- 1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(the machine is shared)",
        f"- {args.predictions:,} predictions over {args.days:g} days, 2 versions, 4 classes, "
        "30 % labelled; a report includes the 2,000-draw bootstrap for every group",
        "",
        "| measure | result | notes |",
        "|---|---:|---|",
        *(f"| {m} | {r} | {n} |" for m, r, n in rows),
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
