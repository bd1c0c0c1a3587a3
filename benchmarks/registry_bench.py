"""Registry benchmark: cold start of `nightscan registry list` with 1,000 versions, and list /
compare latency at 10,000 versions. Every version goes through the real `register_model` path.

    .venv/bin/python benchmarks/registry_bench.py [--versions 10000] [--cold-runs 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from machine import RESULTS, ROOT, cpu_model
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

console = Console()


def populate(home: Path, target: int, progress: Progress) -> None:
    """Register versions up to `target` (same weights, so one artifact; metadata differs)."""
    import torch

    from core import ModelMetadata, configure, get_model_registry
    from inference.architectures import build_model

    configure(home)
    registry = get_model_registry()
    torch.manual_seed(0)
    model = build_model("small_cnn", 5)
    have = registry.count_models()
    task = progress.add_task(f"registering up to {target}", total=target, completed=have)
    for i in range(have, target):
        registry.register_model(
            model,
            ModelMetadata(
                model_id=f"model_{i % 50:02d}",
                version=f"v{i // 500}.{(i // 50) % 10}.{i % 50}",
                training_config={"labels": ["owl", "hawk", "sparrow", "robin", "background"]},
                metrics={"accuracy": 0.8 + (i % 100) / 1000, "inference_time": 0.01 + i / 1e6},
                tags=["bench", f"batch{i // 1000}"],
            ),
        )
        progress.advance(task)


def cold_start(home: Path, runs: int, args: list[str]) -> list[float]:
    exe = str(Path(sys.executable).with_name("nightscan"))
    env = {**os.environ, "NIGHTSCAN_HOME": str(home), "COLUMNS": "120"}
    subprocess.run([exe, *args], env=env, capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([exe, *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--cold-runs", type=int, default=15)
    ap.add_argument("--home", type=Path, default=None, help="reuse a populated home")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="nightscan-bench-"))

    rows: list[tuple[str, str, str]] = []
    ms = lambda xs: f"{statistics.median(xs) * 1000:.1f} ms (min {min(xs) * 1000:.1f})"  # noqa: E731
    with Progress(console=console) as progress:
        populate(home, 1_000, progress)
    from core import get_model_registry

    have = f"{get_model_registry().count_models():,}"
    load = os.getloadavg()[0]
    for label, cli_args in (
        (f"cold start `registry list` ({have} versions, first page)", ["registry", "list"]),
        (
            f"cold start `registry list --json` ({have} versions, all)",
            ["registry", "list", "--json"],
        ),
        ("cold start `nightscan --help`", ["--help"]),
    ):
        rows.append((label, ms(cold_start(home, args.cold_runs, cli_args)), "goal < 400 ms"))

    with Progress(console=console) as progress:
        populate(home, args.versions, progress)
    registry = get_model_registry()
    n = registry.count_models()
    rows += [
        (f"list_models() all ({n} versions)", ms(timed(registry.list_models, 5)), ""),
        (
            f"list_models(limit=50) ({n} versions)",
            ms(timed(lambda: registry.list_models(limit=50, offset=n // 2), 20)),
            "",
        ),
        (
            f"list_models(model_id=..., status=...) ({n} versions)",
            ms(timed(lambda: registry.list_models(model_id="model_07", status="training"), 20)),
            "",
        ),
        (
            f"list_models(tag=...) ({n} versions)",
            ms(timed(lambda: registry.list_models(tag="batch3", limit=100), 20)),
            "",
        ),
        (
            f"compare_models ({n} versions)",
            ms(
                timed(
                    lambda: registry.compare_models(("model_07", "v0.0.7"), ("model_07", "v1.9.7")),
                    50,
                )
            ),  # noqa: E501
            "",
        ),
    ]

    table = Table("measurement", "median", "note", title="Registry benchmark")
    for row in rows:
        table.add_row(*row)
    console.print(table)

    command = "make bench  # = .venv/bin/python benchmarks/registry_bench.py " + " ".join(
        sys.argv[1:]
    )
    lines = [
        f"\n## Registry — {date.today().isoformat()}\n",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}; "
        f"1-minute load average {load:.2f} before the cold starts.  ",
        f"Command: `{command.strip()}`\n",
        "| measurement | median | note |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS.relative_to(ROOT)}; home kept at {home}")


if __name__ == "__main__":
    main()
