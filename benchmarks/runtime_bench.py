"""BatchedRuntime benchmark for small_cnn on 1 s windows: the in-process ceiling (direct
forward passes) and the runtime under closed-loop asyncio clients at several concurrencies,
for a few (max_batch_size, max_batch_delay_ms, replicas, torch threads) settings, plus one
cell showing what an extra OpenMP pool (torch ops on the event-loop thread) costs.
Appends to RESULTS.md.

    .venv/bin/python benchmarks/runtime_bench.py [--seconds 1] [--concurrency 1,8,32]

torch ops only ever run on threads that exit (ceiling) or on runtime workers: every OS thread
that runs torch ops keeps its own OpenMP pool, and an extra pool slows every forward pass.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import torch
from machine import RESULTS, ROOT, cpu_model
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from inference.architectures import build_model
from inference.features import FeatureConfig
from inference.runtime import (
    BatchedRuntime,
    BatchingConfig,
    QueueFullError,
    configure_torch_threads,
)

console = Console(width=None if sys.stdout.isatty() else 120)  # wide tables in logs

# max_batch_size/max_batch_delay_ms/replicas[/torch threads, default: all cores]
DEFAULT_SETTINGS = (
    "1/0/1,8/0/1,8/2/1,16/0/1,16/2/1,16/5/1,32/0/1,32/2/1,32/5/1,1/0/2/1,8/2/2/1,16/2/2/1,16/2/2"
)


@dataclass
class RuntimeRow:
    setting: str
    concurrency: int
    windows_per_s: float
    p50_ms: float
    p95_ms: float
    mean_batch: float
    rejected: int


def on_fresh_thread(fn: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """Run fn on a thread that exits afterwards, taking its OpenMP pool with it."""
    out: list[tuple[float, float]] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def ceiling(model: torch.nn.Module, batch: int, seconds: float, t: int) -> tuple[float, float]:
    """Direct forward passes at a fixed batch size: (windows/s, ms per batch)."""
    x = torch.randn(batch, t)
    with torch.inference_mode():
        warm_until = time.perf_counter() + min(0.3, seconds)
        while time.perf_counter() < warm_until:  # allocator, oneDNN primitives, caches
            model(x)
        n, t0 = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - t0) < seconds:
            torch.softmax(model(x), dim=1)
            n += 1
    return n * batch / elapsed, elapsed / n * 1000


async def closed_loop(
    runtime: BatchedRuntime, concurrency: int, rows: int, seconds: float, t: int
) -> tuple[list[float], int, float]:
    """`concurrency` clients, each sending its next request as soon as the last returns."""
    x = np.random.default_rng(0).standard_normal((rows, t)).astype(np.float32)
    latencies: list[float] = []
    rejected = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal rejected
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                await runtime.infer(x)
            except QueueFullError as exc:
                rejected += 1
                await asyncio.sleep(min(exc.retry_after_s, 0.01))
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, rejected, time.perf_counter() - t0


def bench_runtime(
    model: torch.nn.Module, setting: str, concurrency: int, rows: int, seconds: float, t: int
) -> RuntimeRow:
    size, delay, replicas, *rest = setting.split("/")
    threads = configure_torch_threads(int(rest[0]) if rest else os.cpu_count() or 1)
    setting = f"{size}/{delay}/{replicas}/{threads}"
    config = BatchingConfig(
        max_batch_size=int(size), max_batch_delay_ms=float(delay), replicas=int(replicas)
    )
    runtime = BatchedRuntime(model, config, name="bench")
    try:
        for _ in range(int(replicas) * 5):  # warm-up at full batch size (on the workers)
            runtime.infer_now(np.zeros((int(size), t), np.float32))
        asyncio.run(closed_loop(runtime, concurrency, rows, min(0.2, seconds), t))
        before = runtime.batch_size_counts()
        latencies, rejected, elapsed = asyncio.run(
            closed_loop(runtime, concurrency, rows, seconds, t)
        )
        after = runtime.batch_size_counts()
    finally:
        runtime.close()
    passes = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    n_passes = sum(passes.values())
    qs = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return RuntimeRow(
        setting=setting,
        concurrency=concurrency,
        windows_per_s=len(latencies) * rows / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p95_ms=qs[18] * 1000,
        mean_batch=sum(k * v for k, v in passes.items()) / max(1, n_passes),
        rejected=rejected,
    )


def median_row(rows: list[RuntimeRow]) -> tuple[RuntimeRow, str]:
    """Median of each measure over repeats, plus the windows/s range as a noise indicator."""
    wps = [r.windows_per_s for r in rows]
    row = RuntimeRow(
        setting=rows[0].setting,
        concurrency=rows[0].concurrency,
        windows_per_s=statistics.median(wps),
        p50_ms=statistics.median(r.p50_ms for r in rows),
        p95_ms=statistics.median(r.p95_ms for r in rows),
        mean_batch=statistics.median(r.mean_batch for r in rows),
        rejected=sum(r.rejected for r in rows),
    )
    return row, f"{min(wps):.0f}-{max(wps):.0f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="measurement window per cell")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="size/delay_ms/replicas,...")
    ap.add_argument("--rows", type=int, default=1, help="windows per request")
    ap.add_argument(
        "--repeat", type=int, default=1, help="passes over the whole grid; medians reported"
    )
    ap.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = build_model("small_cnn", 5).eval()
    t = FeatureConfig().clip_samples
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    settings = args.settings.split(",")
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, cores}, reverse=True)
    load_before = os.getloadavg()

    # Repeats are the outer loop so a burst of co-tenant load hits one pass of many cells
    # rather than every pass of one cell.
    ceilings: dict[tuple[int, int], list[tuple[float, float]]] = {}
    cells: dict[tuple[str, int], list[RuntimeRow]] = {}
    grid = [(s, c) for s in settings for c in concurrencies]
    with Progress(console=console) as progress:
        task = progress.add_task(
            "benchmarking", total=args.repeat * (3 * len(thread_counts) + len(grid)) + 1
        )
        for rep in range(args.repeat):
            for threads in thread_counts:
                configure_torch_threads(threads)
                for batch in (1, 8, 32):
                    progress.update(task, description=f"[{rep}] direct b{batch} t{threads}")
                    measure = lambda b=batch: ceiling(model, b, args.seconds, t)  # noqa: E731
                    ceilings.setdefault((threads, batch), []).append(on_fresh_thread(measure))
                    progress.advance(task)
            for setting, concurrency in grid:
                progress.update(task, description=f"[{rep}] runtime {setting} @ {concurrency}")
                row = bench_runtime(model, setting, concurrency, args.rows, args.seconds, t)
                cells.setdefault((setting, concurrency), []).append(row)
                progress.advance(task)
        # Last, because it cannot be undone: the event-loop thread runs one forward pass,
        # so the process holds a second OpenMP pool while the runtime serves.
        progress.update(task, description="runtime with an extra OpenMP pool")
        configure_torch_threads(cores)
        with torch.inference_mode():
            model(torch.zeros(1, t))
        row = bench_runtime(model, "1/0/1", 1, args.rows, args.seconds, t)
        row.setting += "+pool"
        cells[(row.setting, 1)] = [row]
        progress.advance(task)
    load_after = os.getloadavg()

    ceiling_rows = []
    for (threads, batch), runs in ceilings.items():
        wps = [w for w, _ in runs]
        ms = statistics.median(m for _, m in runs)
        ceiling_rows.append(
            (threads, batch, statistics.median(wps), f"{min(wps):.0f}-{max(wps):.0f}", ms)
        )
    runtime_rows = [median_row(runs) for runs in cells.values()]

    ceiling_table = Table(
        "torch threads",
        "batch",
        "windows/s",
        "range",
        "ms / batch",
        title=f"small_cnn direct forward (median of {args.repeat})",
    )
    for threads, batch, wps, spread, ms in ceiling_rows:
        ceiling_table.add_row(str(threads), str(batch), f"{wps:.0f}", spread, f"{ms:.2f}")
    runtime_table = Table(
        "setting",
        "conc.",
        "windows/s",
        "range",
        "p50 ms",
        "p95 ms",
        "mean batch",
        "rejected",
        title=f"BatchedRuntime, {args.rows} window(s)/request (median of {args.repeat})",
        caption="setting = max_batch_size/max_batch_delay_ms/replicas/torch threads",
    )
    for r, spread in runtime_rows:
        runtime_table.add_row(
            r.setting,
            str(r.concurrency),
            f"{r.windows_per_s:.0f}",
            spread,
            f"{r.p50_ms:.2f}",
            f"{r.p95_ms:.2f}",
            f"{r.mean_batch:.1f}",
            str(r.rejected),
        )
    console.print(ceiling_table)
    console.print(runtime_table)
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    console.print(load)
    if args.no_append:
        return

    command = ".venv/bin/python benchmarks/runtime_bench.py " + " ".join(sys.argv[1:])
    lines = [
        f"\n## BatchedRuntime (small_cnn) — {datetime.now().isoformat(timespec='minutes')}\n",
        f"Machine: nproc {cores}, {cpu_model()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {load}.  ",
        f"Command: `{command.strip()}`  ",
        f"Each cell: {args.seconds:g} s window, median of {args.repeat} interleaved passes "
        "(range = min-max windows/s over the passes).\n",
        "| direct forward: torch threads | batch | windows/s | range | ms / batch |",
        "|---|---|---|---|---|",
        *[f"| {n} | {b} | {w:.0f} | {sp} | {m:.2f} |" for n, b, w, sp, m in ceiling_rows],
        "",
        f"Closed-loop asyncio clients, {args.rows} window(s) per request. "
        "`+pool`: same as 1/0/1/2 after the event-loop thread ran one forward pass.\n",
        "| size/delay_ms/replicas/threads | concurrency | windows/s | range | p50 ms | p95 ms "
        "| mean batch | rejected |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r.setting} | {r.concurrency} | {r.windows_per_s:.0f} | {sp} | {r.p50_ms:.2f} "
            f"| {r.p95_ms:.2f} | {r.mean_batch:.1f} | {r.rejected} |"
            for r, sp in runtime_rows
        ],
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
