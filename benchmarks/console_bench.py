"""Console responsiveness under serving load: the Textual console (headless, 120x40), the
inference server and its load generator all in this one process, as ``nightscan demo`` runs
them. For each key press: the wall time from the moment the key reaches the app (the way a
terminal's input thread hands it over) until the first screen update that shows its effect
(a DataTable cursor moved, or another screen shown). Phases: the server idle, then the server
under closed-loop load from ``--threads`` threads posting 1 s WAV clips to ``/predict``.
Appends to RESULTS.md.

    .venv/bin/python benchmarks/console_bench.py [--presses 200] [--threads 12] [--warmup-s 3]
        [--gap-ms 50] [--runs 1] [--reference-s 5] [--dump FILE] [--no-append]

Goal (console issue): "the interface never freezes: a key press is answered within 100 ms while
the server runs at full load in the same process".

How a press is timed: a "keyboard" thread stamps the time and calls the driver's
``process_message`` (what Textual's Linux driver does from its input thread); the app's
``_display`` (called with each compositor update) is wrapped to stamp the first update after
which the expected effect holds. ``Pilot.press`` is not timed: it returns only once the process
looks idle (``textual._wait.wait_for_idle``, up to 1 s, twice), which it never is under load.
Headless, the update is computed (layout, compositor, dirty regions) but not written to a
terminal. The console's own polls (thread workers, the live panel every second) stay on.
Full (generation 2) garbage collections are timed too (``gc.callbacks``): each one holds the
GIL, so it stops every thread, and a press that overlaps one waits it out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from machine import RESULTS, ROOT, cpu_model
from rich.console import Console
from rich.table import Table

console = Console(width=None if sys.stdout.isatty() else 160)  # wide tables in logs
GOAL_MS = 100.0
SIZE = (120, 40)
SECOND_DEPLOYMENT = "wildlife_detector_staging"
# One cycle of keys: screen switches (1-4) and cursor moves ("move": down, or up at the last
# row) on the registry (1) and deployments (3) lists.
CYCLE = ("3", "move", "move", "move", "2", "4", "1", "move", "move", "move")
COLUMNS = ("run", "phase", "load threads", "presses", "median ms", "p95 ms", "p99 ms", "max ms",
           "> 100 ms", "of those in a full GC", "timed out", "server req/s", "failed req",
           "full GCs: n, max ms", "worst")  # fmt: skip
KIND_COLUMNS = ("run", "phase", "kind", "presses", "median ms", "p95 ms", "max ms", "> 100 ms",
                "median loop-thread CPU ms")  # fmt: skip


# ---- the home: the demo's trained models and deployments ---------------------------------------


def seed_home(home: Path) -> None:
    """``seed_demo`` (two trained versions, ``wildlife_detector_prod`` on v2.0.0, a running
    experiment), plus v2.1.0 deployed as a second deployment so that the deployments list has
    two rows to move between."""
    from core import context
    from core.demo import DEMO_MODEL, seed_demo
    from core.deployments import DeploymentConfig, get_deployment_manager

    os.environ["NIGHTSCAN_HOME"] = str(home)
    context.configure(home)
    seed_demo(on_step=lambda msg: console.print(f"  {msg}"))
    console.print(f"  deploying {DEMO_MODEL}:v2.1.0 as {SECOND_DEPLOYMENT}")
    get_deployment_manager().deploy_model(
        DeploymentConfig(
            model_id=DEMO_MODEL,
            version="v2.1.0",
            deployment_id=SECOND_DEPLOYMENT,
            environment="staging",
        )
    )


# ---- the load: closed-loop httpx clients in threads of this process ----------------------------


class Load:
    """``threads`` threads, each posting WAV clips to ``/predict`` back to back."""

    def __init__(self, url: str, threads: int, clips: list[bytes]) -> None:
        self.url = url
        self.clips = clips
        self.threads = threads
        self.ok: list[float] = []  # perf_counter at each 200 answer (list.append is atomic)
        self.failed: list[float] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> Load:
        self._stop.clear()
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(60)
        self._workers.clear()

    def _run(self, index: int) -> None:
        import httpx

        headers = {"content-type": "audio/wav"}
        with httpx.Client(base_url=self.url, timeout=60) as client:
            i = index
            while not self._stop.is_set():
                body = self.clips[i % len(self.clips)]
                i += 1
                try:
                    r = client.post("/predict", content=body, headers=headers)
                    (self.ok if r.status_code == 200 else self.failed).append(time.perf_counter())
                except httpx.HTTPError:
                    self.failed.append(time.perf_counter())

    def between(self, start: float, end: float) -> tuple[int, int]:
        ok = sum(1 for t in list(self.ok) if start <= t < end)
        return ok, sum(1 for t in list(self.failed) if start <= t < end)


# ---- the console side --------------------------------------------------------------------------


class PaintWatch:
    """Wraps ``app._display`` (called with every compositor update of the top screen) and
    stamps the first update after which ``expect(screen)`` holds."""

    def __init__(self, app: Any) -> None:
        self.expect: Callable[[Any], bool] | None = None
        self.painted_at = 0.0
        self.painted_cpu = 0.0  # this (the event loop's) thread's CPU time at that update
        self.done = asyncio.Event()
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count or self.expect is None:
                return
            if screen is app.screen and self.expect(screen):
                self.painted_at = time.perf_counter()
                self.painted_cpu = time.thread_time()
                self.expect = None
                self.done.set()

        app._display = display

    def arm(self, expect: Callable[[Any], bool]) -> None:
        self.painted_at = 0.0
        self.done.clear()
        self.expect = expect


class GcWatch:
    """Every full (generation 2) garbage collection: it holds the GIL, so it stops every
    thread of the process, whichever thread triggered it."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float]] = []  # perf_counter start, end
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started[threading.get_ident()] = time.perf_counter()
        elif (started := self._started.pop(threading.get_ident(), None)) is not None:
            self.pauses.append((started, time.perf_counter()))

    def overlap_ms(self, start: float, end: float) -> float:
        return 1000 * sum(max(0.0, min(end, b) - max(start, a)) for a, b in list(self.pauses))

    def within(self, start: float, end: float) -> list[float]:
        return [1000 * (b - a) for a, b in list(self.pauses) if start <= a < end]

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


@dataclass
class Press:
    run: int
    phase: str
    key: str
    kind: str  # "move" or "switch"
    screen: str  # where the key was pressed
    at_s: float  # since the phase started
    ms: float  # key handed to the app -> first screen update showing its effect
    cpu_ms: float  # CPU time the event-loop thread spent meanwhile (its own work)
    gc_ms: float  # full garbage collections meanwhile (they stop every thread)
    timed_out: bool
    note: str = ""  # for a press that timed out: what the screen showed instead


class Keyboard:
    """A thread that hands keys to the app as Textual's terminal input thread does."""

    def __init__(self, app: Any) -> None:
        from textual import events

        self.app = app
        self.events = events
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="keyboard")

    def _send(self, key: str) -> float:
        char = key if len(key) == 1 else None
        event = self.events.Key(key, char)
        started = time.perf_counter()
        self.app._driver.process_message(event)  # -> run_coroutine_threadsafe(_post_message)
        return started

    async def press(self, key: str) -> float:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._send, key)

    def close(self) -> None:
        self.pool.shutdown()


def plan(app: Any, step: str) -> tuple[str, str, Callable[[Any], bool]]:
    """(key, kind, the effect to wait for) for one step of CYCLE on the current screen."""
    from screens import deployments, events, experiments, registry

    targets = {
        "1": registry.RegistryScreen,
        "2": experiments.ExperimentsScreen,
        "3": deployments.DeploymentsScreen,
        "4": events.EventsScreen,
    }
    if step in targets:
        cls = targets[step]
        return step, "switch", lambda screen: isinstance(screen, cls)
    screen = app.screen
    table = screen.table
    if table.row_count < 2:
        raise SystemExit(f"{type(screen).__name__} lists {table.row_count} row(s); need 2")
    row = table.cursor_row
    key, target = ("down", row + 1) if row < table.row_count - 1 else ("up", row - 1)
    return key, "move", lambda s: s is screen and s.table.cursor_row == target


async def press_keys(
    app: Any,
    watch: PaintWatch,
    keyboard: Keyboard,
    gcs: GcWatch,
    args: argparse.Namespace,
    run: int,
    phase: str,
) -> tuple[list[Press], float, float]:
    presses: list[Press] = []
    started = time.perf_counter()
    for i in range(args.presses):
        key, kind, expect = plan(app, CYCLE[i % len(CYCLE)])
        screen = type(app.screen).__name__.removesuffix("Screen").lower()
        watch.arm(expect)
        cpu = time.thread_time()
        sent = await keyboard.press(key)
        note = ""
        try:
            await asyncio.wait_for(watch.done.wait(), args.timeout_s)
            ms, cpu_ms = (watch.painted_at - sent) * 1000, (watch.painted_cpu - cpu) * 1000
        except TimeoutError:
            watch.expect = None
            ms, cpu_ms = args.timeout_s * 1000, (time.thread_time() - cpu) * 1000
            now = app.screen
            table = getattr(now, "table", None)
            note = f"{type(now).__name__}, cursor row {table.cursor_row if table else '-'}"
        gc_ms = gcs.overlap_ms(sent, sent + ms / 1000)
        at = sent - started
        press = Press(run, phase, key, kind, screen, at, ms, cpu_ms, gc_ms, bool(note), note)
        presses.append(press)
        await asyncio.sleep(args.gap_ms / 1000)  # a fast typist, not a key-repeat storm
    return presses, started, time.perf_counter()


@dataclass
class Row:
    run: int
    phase: str
    threads: int
    presses: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    over_goal: int
    over_goal_in_gc: int  # of those, how many had a full garbage collection inside
    timed_out: int
    req_s: float
    failed: int
    full_gcs: list[float]  # the full garbage collections during the phase, ms each
    worst: str


def summarize(presses: list[Press], run: int, phase: str, threads: int, load: Load | None,
              gcs: GcWatch, window: tuple[float, float]) -> Row:  # fmt: skip
    ms = np.array([p.ms for p in presses])
    median, p95, p99 = np.percentile(ms, [50, 95, 99])
    worst = max(presses, key=lambda p: p.ms)
    ok, failed = load.between(*window) if load else (0, 0)
    return Row(
        run=run,
        phase=phase,
        threads=threads,
        presses=len(presses),
        median_ms=float(median),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=float(ms.max()),
        over_goal=int((ms > GOAL_MS).sum()),
        over_goal_in_gc=sum(p.ms > GOAL_MS and p.gc_ms > 0 for p in presses),
        timed_out=sum(p.timed_out for p in presses),
        req_s=ok / (window[1] - window[0]),
        failed=failed,
        full_gcs=gcs.within(*window),
        worst=f"{worst.key} on {worst.screen}",
    )


def reference_load(url: str, clips: list[bytes], args: argparse.Namespace) -> float:
    """req/s of the same load before the console starts: what full load is without it."""
    console.print(f"reference: {args.threads} load threads, no console")
    load = Load(url, args.threads, clips).start()
    try:
        time.sleep(args.warmup_s)
        start = time.perf_counter()
        time.sleep(args.reference_s)
        end = time.perf_counter()
    finally:
        load.stop()
    time.sleep(1.0)  # the runtimes' queues drain
    return load.between(start, end)[0] / (end - start)


async def drive(
    url: str, clips: list[bytes], args: argparse.Namespace
) -> tuple[list[Row], list[Press], int]:
    """The phases; also returns how many objects the garbage collector tracked before them."""
    from nightscan_tui.app import make_app

    app = make_app(cursor_blink=False)
    rows: list[Row] = []
    presses: list[Press] = []
    async with app.run_test(size=SIZE) as pilot:
        watch = PaintWatch(app)
        keyboard = Keyboard(app)
        gcs = GcWatch()
        try:
            # Visit every screen once (first visits compose and mount) and let the data arrive.
            await pilot.pause()
            for key in ("2", "3", "4", "1"):
                await pilot.press(key)
                await asyncio.sleep(0.5)
            await app.workers.wait_for_complete()
            tracked = len(gc.get_objects())
            for run in range(1, args.runs + 1):
                for phase, threads in (("idle", 0), ("load", args.threads)):
                    load = Load(url, threads, clips).start() if threads else None
                    label = f"run {run}/{args.runs}, {phase}"
                    try:
                        if load:
                            console.print(f"{label}: {threads} load threads, warming up")
                            await asyncio.sleep(args.warmup_s)
                        console.print(f"{label}: {args.presses} key presses")
                        got, start, end = await press_keys(
                            app, watch, keyboard, gcs, args, run, phase
                        )
                    finally:
                        if load:
                            load.stop()
                    row = summarize(got, run, phase, threads, load, gcs, (start, end))
                    console.print(
                        f"  median {row.median_ms:.1f} ms, max {row.max_ms:.1f} ms, "
                        f"{row.req_s:.0f} req/s"
                    )
                    rows.append(row)
                    presses += got
                    await asyncio.sleep(1.0)  # the runtimes' queues drain
        finally:
            keyboard.close()
            gcs.close()
    return rows, presses, tracked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=200, help="key presses per phase")
    parser.add_argument("--threads", type=int, default=12, help="load threads in the load phase")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="load before the presses")
    parser.add_argument("--gap-ms", type=float, default=50.0, help="pause after each answer")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="give up on a press")
    parser.add_argument("--runs", type=int, default=1, help="idle + load phases, repeated")
    parser.add_argument(
        "--reference-s", type=float, default=5.0, help="load without the console, first"
    )
    parser.add_argument("--dump", type=Path, help="write every press as JSON here")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="nightscan-console-bench-"))
    console.print(f"home {home}: seeding the demo (trains two models)")
    seed_home(home)

    from core import get_context
    from core.deployments import get_deployment_manager
    from core.server.app import create_app
    from core.server.runner import BackgroundServer
    from core.traffic import synthetic_clips

    clips = [wav for _label, wav in synthetic_clips(16)]
    server = BackgroundServer(port=0, app=create_app(get_deployment_manager())).start()
    console.print(f"server on {server.url}")
    try:
        alone = reference_load(server.url, clips, args)
        rows, presses, tracked_before = asyncio.run(drive(server.url, clips, args))
        tracked = len(gc.get_objects())  # what a full collection has to traverse
    finally:
        server.stop()
        get_context().close()
        shutil.rmtree(home, ignore_errors=True)
    load_after = os.getloadavg()[0]

    if args.dump:
        args.dump.write_text(json.dumps([asdict(p) for p in presses], indent=1))
    for row in rows:
        slow = sorted((p for p in presses if p.run == row.run and p.phase == row.phase),
                      key=lambda p: -p.ms)[:5]  # fmt: skip
        text = "; ".join(
            f"{p.key} on {p.screen} at {p.at_s:.1f} s: {p.ms:.0f} ms "
            f"(loop-thread CPU {p.cpu_ms:.0f} ms, full GC {p.gc_ms:.0f} ms)"
            + (f" timed out: {p.note}" if p.note else "")
            for p in slow
        )
        console.print(f"run {row.run} {row.phase}, slowest: {text}")

    table = Table(title="Key press -> screen update, console + server + load in one process")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("phase", "worst") else "right")
    for r in rows:
        table.add_row(*cells(r))
    console.print(table)
    by_kind = kind_rows(presses)
    kinds = Table(title="By kind of key")
    for col in KIND_COLUMNS:
        kinds.add_column(col, justify="left" if col in ("phase", "kind") else "right")
    for k in by_kind:
        kinds.add_row(*k)
    console.print(kinds)
    load = f"1-minute load average {load_before:.2f} before, {load_after:.2f} after"
    heap = (
        f"objects tracked by the garbage collector: {tracked_before:,} before the first press, "
        f"{tracked:,} after the last"
    )
    console.print(f"{load}; {heap}")
    reference = (
        f"the server alone in this process (no console), {args.threads} load threads: "
        f"{alone:.0f} req/s over {args.reference_s:g} s"
    )
    console.print(reference)
    for r in rows:
        console.print(verdict(r))
    if args.no_append:
        return

    command = ".venv/bin/python benchmarks/console_bench.py " + " ".join(sys.argv[1:])
    lines = [
        "",
        f"## Console: key press latency under serving load ({datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"- machine: nproc {os.cpu_count()}, {cpu_model()}, Python {platform.python_version()}",
        f"- command: `{command.strip()}`",
        f"- {load} (the machine is shared)",
        f"- reference: {reference}",
        f"- one process: the console (`make_app`, headless {SIZE[0]}x{SIZE[1]}, its polls on), "
        "the inference server (`BackgroundServer` over `create_app`, the demo home from "
        f"`seed_demo` plus `{SECOND_DEPLOYMENT}`) and the load: closed-loop httpx clients in "
        "threads posting 1 s WAV clips to `/predict`; the load competes with the console for "
        "the GIL and the 2 cores",
        "- a press: from the keyboard thread handing the key to the driver until the first "
        "compositor update showing the cursor moved or the other screen; "
        f"{args.gap_ms:g} ms pause after each answer; keys cycle `{' '.join(CYCLE)}` "
        "(moves on the registry and deployments lists); loop-thread CPU: what the console's "
        "event-loop thread itself spent during the press",
        "- full GCs: generation-2 garbage collections (timed with `gc.callbacks`); each holds "
        f"the GIL and so stops every thread, and takes longer the more objects there are; {heap}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(f"| {' | '.join(cells(r))} |" for r in rows),
        "",
        "| " + " | ".join(KIND_COLUMNS) + " |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {' | '.join(k)} |" for k in by_kind),
        "",
        *(f"- {verdict(r)}" for r in rows),
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS.relative_to(ROOT)}")


def cells(r: Row) -> list[str]:
    share = f"{r.over_goal} ({100 * r.over_goal / r.presses:.1f}%)"
    gcs = f"{len(r.full_gcs)}, {max(r.full_gcs):.0f}" if r.full_gcs else "0"
    return [str(r.run), r.phase, str(r.threads), str(r.presses), f"{r.median_ms:.1f}",
            f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}", f"{r.max_ms:.1f}", share,
            str(r.over_goal_in_gc), str(r.timed_out), f"{r.req_s:.0f}", str(r.failed),
            gcs, r.worst]  # fmt: skip


def kind_rows(presses: list[Press]) -> list[list[str]]:
    out = []
    keys = sorted(
        {(p.run, p.phase, p.kind) for p in presses}, key=lambda k: (k[0], k[1] != "idle", k[2])
    )
    for run, phase, kind in keys:
        mine = [p for p in presses if (p.run, p.phase, p.kind) == (run, phase, kind)]
        ms = np.array([p.ms for p in mine])
        median, p95 = np.percentile(ms, [50, 95])
        cpu = float(np.median([p.cpu_ms for p in mine]))
        out.append([str(run), phase, kind, str(len(ms)), f"{median:.1f}", f"{p95:.1f}",
                    f"{ms.max():.1f}", str(int((ms > GOAL_MS).sum())), f"{cpu:.1f}"])  # fmt: skip
    return out


def verdict(r: Row) -> str:
    met = r.over_goal == 0 and r.timed_out == 0
    goal = (
        f"goal (every press within {GOAL_MS:.0f} ms under load): {'met' if met else 'NOT met'}"
        if r.threads
        else "baseline, no load"
    )
    return (
        f"run {r.run}, {r.phase} ({r.req_s:.0f} req/s): {r.over_goal} of {r.presses} presses over "
        f"{GOAL_MS:.0f} ms ({r.over_goal_in_gc} of them during a full GC), worst "
        f"{r.max_ms:.1f} ms ({r.worst}); {goal}"
    )


if __name__ == "__main__":
    main()
