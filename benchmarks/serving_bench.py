"""End-to-end serving benchmark: ``nightscan serve`` in a subprocess, a load generator in another
process sending 1 s WAV clips to ``/predict`` at concurrency 1, 8 and 32 (closed loop, a bounded
number of requests each), next to the same model run in-process in batches of the same sizes
(the ceiling on this machine) and one forward pass. Appends the numbers to RESULTS.md.

    .venv/bin/python benchmarks/serving_bench.py [--requests 300] [--concurrency 1,8,32]
        [--runs 2] [--cpu 1] [--max-batch-size 16] [--max-batch-delay-ms 2] [--workers 1,2]
        [--no-append]

``--workers 1,2`` measures ``nightscan serve --workers W`` for each W (issue 13).

Goals (issue 4): throughput at concurrency 32 >= 0.8 x the in-process ceiling at batch 32;
p50 latency at concurrency 1 within 3 ms of one forward pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from machine import RESULTS, ROOT, cpu_model

MODEL, VERSION, DEP = "bench_detector", "v1.0.0", "bench_prod"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]


# ---- load generator (its own process) -------------------------------------------------------


async def _load(url: str, concurrency: int, requests: int, warmup: int, path: str) -> None:
    import httpx
    import numpy as np

    from inference.synthetic import generate_call, write_wav

    clips = []
    for seed in range(8):
        wav = Path(tempfile.gettempdir()) / f"serving_bench_{os.getpid()}_{seed}.wav"
        write_wav(wav, generate_call(LABELS[seed % 4], np.random.default_rng(seed)))
        clips.append(wav.read_bytes())
        wav.unlink()
    headers = {"content-type": "audio/wav"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    next_index = 0
    done = 0

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one(i: int) -> float:
            started = time.perf_counter()
            if path == "/predict":
                body = clips[i % len(clips)]
                response = await client.post(path, content=body, headers=headers)
            else:  # the HTTP floor: the same client and server, no audio, no model
                response = await client.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}: {response.text}")
            return elapsed

        await asyncio.gather(*(one(i) for i in range(warmup)))

        async def worker() -> None:
            nonlocal next_index, done
            while next_index < requests:
                i = next_index
                next_index += 1
                latencies.append(await one(i))
                done += 1
                if done % 10 == 0 or done == requests:
                    print(f"progress {done}", flush=True)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "latencies": latencies}), flush=True)


# ---- the parent: seed, serve, measure ------------------------------------------------------


@dataclass
class Row:
    workers: int
    concurrency: int
    requests: int
    throughput: float
    p50_ms: float
    p95_ms: float
    ceiling: float
    batch_ms: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_home(home: Path, args: argparse.Namespace) -> None:
    import torch

    from core import ModelMetadata, ModelStatus, context, get_model_registry
    from core.deployments import DeploymentConfig, get_deployment_manager
    from inference.architectures import build_model

    ctx = context.configure(home)
    torch.manual_seed(0)
    get_model_registry().register_model(
        build_model("small_cnn", len(LABELS)),
        ModelMetadata(
            model_id=MODEL,
            version=VERSION,
            status=ModelStatus.VALIDATION,
            training_config={"labels": LABELS},
        ),
    )
    batching = {
        "max_batch_size": args.max_batch_size,
        "max_batch_delay_ms": args.max_batch_delay_ms,
        "queue_capacity": max(256, args.max_batch_size),
    }
    config = DeploymentConfig(model_id=MODEL, version=VERSION, deployment_id=DEP,
                              resources={"cpu": args.cpu}, batching=batching)  # fmt: skip
    get_deployment_manager().deploy_model(config)
    ctx.close()


def load_model(home: Path) -> Any:
    from core import context, get_model_registry

    ctx = context.configure(home)
    model = get_model_registry().load_model(MODEL, VERSION).eval()
    ctx.close()
    return model


def forward_seconds(model: Any, size: int, repeats: int = 30) -> float:
    """Median seconds of one forward pass (softmax included, as the runtime runs it) of a batch
    of ``size`` 1 s windows, with the better of 1 and all torch threads."""
    import numpy as np
    import torch

    from inference.features import FeatureConfig

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((size, FeatureConfig().clip_samples), np.float32))
    best = float("inf")
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        times = []
        with torch.inference_mode():
            for i in range(repeats + 5):
                t0 = time.perf_counter()
                torch.softmax(model(x).float(), dim=1).numpy()
                if i >= 5:
                    times.append(time.perf_counter() - t0)
        best = min(best, statistics.median(times))
    return best


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def run_load(url: str, c: int, requests: int, progress, task, path: str = "/predict") -> Any:
    cmd = [sys.executable, __file__, "_loadgen", url, str(c), str(requests), path]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    result: dict[str, Any] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("progress "):
            progress.update(task, completed=int(line.split()[1]))
        elif line.startswith("{"):
            result = json.loads(line)
    if proc.wait() != 0 or not result:
        raise SystemExit(f"the load generator failed (exit {proc.returncode})")
    return result["wall_s"], result["latencies"]


@dataclass
class Run:
    rows: list[Row]
    forward_ms: float  # one forward pass, batch 1
    floor_ms: float  # p50 of GET /health at concurrency 1: HTTP alone


def one_run(args: argparse.Namespace, sizes: list[int], console, workers: int = 1) -> Run:
    import numpy as np
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    home = Path(tempfile.mkdtemp(prefix="nightscan-serving-bench-"))
    seed_home(home, args)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "nightscan_tui.cli", "--home", str(home), "serve", "--port",
         str(port), "--workers", str(workers)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rows = []
    try:
        model = load_model(home)
        wait_ready(url, server)
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        ) as progress:  # fmt: skip
            one_forward = forward_seconds(model, 1)
            for c in sizes:
                # The ceiling right before its HTTP phase (the server idle meanwhile), so that
                # both see the same background load on a shared machine.
                forward = forward_seconds(model, c)
                n = max(args.requests, 10 * c)
                task = progress.add_task(f"/predict, concurrency {c}", total=n)
                wall, latencies = run_load(url, c, n, progress, task)
                p50, p95 = np.percentile(np.array(latencies) * 1000, [50, 95])
                rows.append(Row(workers, c, n, n / wall, p50, p95, c / forward, forward * 1000))
            task = progress.add_task("GET /health, concurrency 1", total=args.requests)
            _, floor = run_load(url, 1, args.requests, progress, task, "/health")
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(home, ignore_errors=True)
    return Run(rows, one_forward * 1000, statistics.median(floor) * 1000)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_loadgen":
        url, concurrency, requests, path = sys.argv[2:6]
        c = int(concurrency)
        asyncio.run(_load(url, c, int(requests), min(32, c * 2), path))
        return

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per concurrency (min 10 x c)")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--runs", type=int, default=2, help="repeat to see the noise")
    parser.add_argument("--cpu", type=float, default=1, help="the deployment's resources.cpu")
    parser.add_argument("--max-batch-size", type=int, help="default: the deployment default")
    parser.add_argument("--max-batch-delay-ms", type=float, help="default: the deployment default")
    parser.add_argument("--workers", default="1", help="serve --workers values, e.g. 1,2")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    from core.deployments.config import BatchingSettings

    if args.max_batch_size is None:
        args.max_batch_size = BatchingSettings.max_batch_size
    if args.max_batch_delay_ms is None:
        args.max_batch_delay_ms = BatchingSettings.max_batch_delay_ms
    sizes = [int(c) for c in args.concurrency.split(",")]

    from rich.console import Console
    from rich.table import Table

    console = Console()
    load_before = os.getloadavg()[0]
    workers = [int(w) for w in args.workers.split(",")]
    runs = []
    for i in range(args.runs):
        for w in workers:  # alternating within a run, so both see the same background load
            console.print(f"run {i + 1}/{args.runs}, {w} worker(s)")
            runs.append(one_run(args, sizes, console, w))

    table = Table(title="/predict over HTTP vs the in-process ceiling (small_cnn, 1 s clips)")
    for col in ("run", "workers", "concurrency", "requests", "req/s", "p50 ms", "p95 ms",
                "ceiling req/s", "batch fwd ms", "of ceiling"):  # fmt: skip
        table.add_column(col, justify="right")
    lines = []
    for i, run in enumerate(runs, 1):
        for r in run.rows:
            cells = [str(i), str(r.workers), str(r.concurrency), str(r.requests),
                     f"{r.throughput:.1f}", f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}",
                     f"{r.ceiling:.1f}", f"{r.batch_ms:.2f}",
                     f"{r.throughput / r.ceiling:.2f}"]  # fmt: skip
            table.add_row(*cells)
            lines.append("| " + " | ".join(cells) + " |")
    console.print(table)

    verdicts = []
    for i, run in enumerate(runs, 1):
        by_c = {r.concurrency: r for r in run.rows}
        i = f"{i} ({run.rows[0].workers} worker(s))" if run.rows else i
        fwd = by_c[1].batch_ms if 1 in by_c else run.forward_ms  # measured next to that phase
        if 32 in by_c:
            share = by_c[32].throughput / by_c[32].ceiling
            verdicts.append(f"run {i}: concurrency 32 reaches {share:.2f} of the ceiling "
                            f"(goal >= 0.80: {'met' if share >= 0.8 else 'NOT met'})")  # fmt: skip
        if 1 in by_c:
            gap = by_c[1].p50_ms - fwd
            verdicts.append(f"run {i}: p50 at concurrency 1 is {by_c[1].p50_ms:.2f} ms vs one "
                            f"forward pass {fwd:.2f} ms: +{gap:.2f} ms "
                            f"(goal <= 3 ms: {'met' if gap <= 3 else 'NOT met'}); GET /health "
                            f"alone takes {run.floor_ms:.2f} ms (p50)")  # fmt: skip
    for v in verdicts:
        console.print(v)
    if args.no_append:
        return
    cpu = cpu_model()
    command = "python benchmarks/serving_bench.py " + " ".join(sys.argv[1:])
    header = ("| run | workers | concurrency | requests | req/s | p50 ms | p95 ms "
              "| ceiling req/s | batch fwd ms | of ceiling |\n|" + "---:|" * 10)  # fmt: skip
    text = "\n".join([
        f"\n## Serving: /predict over HTTP vs in-process ({datetime.now():%Y-%m-%d %H:%M})\n",
        f"`{command.strip()}` - nproc {os.cpu_count()}, {cpu}, Python {platform.python_version()}"
        f"; deployment resources.cpu={args.cpu:g}, max_batch_size={args.max_batch_size}, "
        f"max_batch_delay_ms={args.max_batch_delay_ms:g}; raw audio/wav bodies, closed-loop "
        "httpx.AsyncClient in its own process; ceiling = batch size / median forward pass "
        "(softmax included, best of 1 and all torch threads), measured right before each HTTP "
        f"phase; 1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        "(the machine is shared).\n",
        header, *lines, "", *[f"- {v}" for v in verdicts], "",
    ])  # fmt: skip
    with RESULTS.open("a") as fh:
        fh.write(text)
    console.print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
