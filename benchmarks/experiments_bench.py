"""A/B experiments benchmark: routing decisions per second on one core, durable
``record_result`` throughput into one SQLite file from 4 writer processes, and
``analyze_experiment`` latency at 10,000 and 10,000,000 results. Appends to RESULTS.md.

    .venv/bin/python benchmarks/experiments_bench.py [--large 10000000] [--writers 4]

Every result goes through the real path (validation, group commit, ``ON CONFLICT`` inserts of
units and raw rows, sufficient-statistics upserts): the large case is recorded with
``record_results`` in batches of 20,000, never by seeding the statistics directly. A result is
one request's value of the primary metric (one raw row).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from machine import RESULTS, ROOT, cpu_model
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(ROOT))
console = Console()
MODEL = "wildlife_detector"


def setup_home(home: Path) -> None:
    """Register two tiny model versions in a fresh home."""
    import core
    from core import ModelMetadata, get_model_registry
    from inference.architectures import build_model
    from inference.weights import state_dict_to_bytes

    core.configure(home)
    weights = state_dict_to_bytes(build_model("small_cnn", 2))
    for v in ("v2.0.0", "v2.1.0"):
        meta = ModelMetadata(model_id=MODEL, version=v, training_config={"labels": ["a", "b"]})
        get_model_registry().register_weights(weights, meta)


def create(experiment_id: str, metrics: list[str] | None = None) -> None:
    from core import get_ab_test_manager

    manager = get_ab_test_manager()
    manager.create_experiment(
        {
            "experiment_id": experiment_id,
            "model_variants": {"control": f"{MODEL}:v2.0.0", "treatment": f"{MODEL}:v2.1.0"},
            "traffic_allocation": {"control": 50.0, "treatment": 50.0},
            "success_metrics": metrics or ["accuracy", "inference_time"],
            "minimum_sample_size": 1000,
        }
    )
    manager.start_experiment(experiment_id)


# ---- routing ------------------------------------------------------------------------------------


def bench_routing(decisions: int) -> float:
    from core import get_ab_test_manager

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    manager = get_ab_test_manager()
    ids = [f"user_{i}_request_{i * 7}" for i in range(decisions)]
    route = manager.get_model_for_request
    route(ids[0], "routing")  # warm the map cache
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for request_id in ids:
            route(request_id, "routing")
        best = max(best, decisions / (time.perf_counter() - start))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    return best


# ---- durable writes from several processes ---------------------------------------------------


def _writer(
    home: str, worker: int, per_worker: int, threads: int, bulk: int, ready, go, done
) -> None:
    import threading

    import core
    from core import get_ab_test_manager

    core.configure(home)
    manager = get_ab_test_manager()
    manager.assign("writes", "warm-up")
    ready.put(worker)
    go.wait()

    def result(i: int) -> tuple[str, str, str, dict[str, float]]:
        request = f"w{worker}-{bulk}-{i}"
        variant = manager.assign("writes", request)[0]
        return ("writes", request, variant, {"accuracy": float(i % 3 == 0), "inference_time": 0.2})

    def run(t: int) -> None:
        mine = range(t, per_worker, threads)
        if bulk == 1:
            for i in mine:
                manager.record_result(*result(i))
            return
        for first in range(0, len(mine), bulk):
            manager.record_results([result(i) for i in mine[first : first + bulk]])

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    done.put((worker, manager.writer.commits))


def bench_writes(
    home: Path, writers: int, per_worker: int, threads: int, bulk: int = 1
) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    ready, done, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(str(home), w, per_worker, threads, bulk, ready, go, done))
        for w in range(writers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start = time.perf_counter()
    go.set()
    commits = sum(done.get(timeout=1800)[1] for _ in procs)
    elapsed = time.perf_counter() - start
    for p in procs:
        p.join()
    return writers * per_worker / elapsed, commits


# ---- analysis ---------------------------------------------------------------------------------


def fill(experiment_id: str, results: int, progress: Progress | None = None) -> float:
    """Record ``results`` through record_results in batches; returns results per second."""
    from core import get_ab_test_manager

    manager = get_ab_test_manager()
    batch = 20_000
    task = progress.add_task(f"recording {results:,} results", total=results) if progress else None
    start = time.perf_counter()
    for first in range(0, results, batch):
        rows = [
            (experiment_id, f"r{i}", "control" if i % 2 else "treatment", {"accuracy": i % 3 == 0})
            for i in range(first, min(first + batch, results))
        ]
        manager.record_results(rows)
        if progress is not None:
            progress.update(task, advance=len(rows))
    return results / (time.perf_counter() - start)


def time_analysis(experiment_id: str, repeats: int = 50) -> tuple[float, float]:
    from core import get_ab_test_manager

    manager = get_ab_test_manager()
    manager.analyze_experiment(experiment_id)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        analysis = manager.analyze_experiment(experiment_id)
        times.append((time.perf_counter() - start) * 1000)
    units = sum(v["units"] for v in analysis["variants"].values())
    assert units > 0
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--per-writer", type=int, default=25_000)
    parser.add_argument("--threads", type=int, default=32, help="caller threads per writer")
    parser.add_argument("--bulk", type=int, default=100, help="results per record_results call")
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--home", type=Path, default=None, help="keep the data here")
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    home = args.home or Path(tempfile.mkdtemp(prefix="nightscan-bench-"))
    rows: list[tuple[str, str, str]] = []
    try:
        setup_home(home)
        create("routing")
        rate = bench_routing(args.decisions)
        rows.append(("routing decisions / s (1 core)", f"{rate:,.0f}", "goal >= 500,000"))
        console.print(f"routing: {rate:,.0f} decisions/s")

        create("writes")
        total = args.writers * args.per_writer
        for bulk in (1, args.bulk):
            rate, commits = bench_writes(home, args.writers, args.per_writer, args.threads, bulk)
            call = (
                "record_result (1 per call)" if bulk == 1 else f"record_results ({bulk} per call)"
            )
            rows.append(
                (
                    f"durable {call} / s: {args.writers} processes x {args.threads} threads, "
                    f"{total:,} results of 2 metrics",
                    f"{rate:,.0f}",
                    f"goal >= 20,000; {commits:,} commits",
                )
            )
            console.print(f"writes, {call}: {rate:,.0f} results/s in {commits:,} commits")

        for size, name in ((10_000, "small"), (args.large, "large")):
            create(name, ["accuracy"])
            with Progress(console=console, transient=True) as progress:
                load_rate = fill(name, size, progress)
            median, worst = time_analysis(name)
            rows.append(
                (
                    f"analyze_experiment at {size:,} results",
                    f"{median:.2f} ms",
                    f"max {worst:.2f} ms (50 runs); loaded at {load_rate:,.0f} results/s",
                )
            )
            console.print(f"analyze at {size:,}: median {median:.2f} ms")
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)

    table = Table(title="A/B experiments", header_style="bold")
    table.add_column("measure")
    table.add_column("result", justify="right")
    table.add_column("notes")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.no_append:
        return

    command = " ".join([".venv/bin/python", "benchmarks/experiments_bench.py", *sys.argv[1:]])
    lines = [
        "",
        f"## A/B experiments ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}; SQLite {sqlite_version()}",
        f"- command: `{command}`",
        f"- 1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        "(the machine is shared; the write rates are CPU-bound)",
        "- every result recorded through the real durable path (validation, group commit,",
        "  ON CONFLICT inserts, sufficient-statistics upserts); no statistics seeded directly",
        "",
        "| measure | result | notes |",
        "|---|---:|---|",
        *(f"| {m} | {r} | {n} |" for m, r, n in rows),
        "",
    ]
    with RESULTS.open("a") as fh:
        if RESULTS.stat().st_size == 0:
            fh.write("# Benchmark results\n")
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS}")


def sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    main()
