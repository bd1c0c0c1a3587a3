"""Canary policy operating characteristics: seeded rollouts under the default configuration.

    .venv/bin/python benchmarks/canary_sim.py [--rollouts 500] [--rps 2 10 100]
        [--intervals 60 600] [--seed 0] [--no-append]

For every traffic level and analysis interval: the false-abort rate of a canary identical to
stable (2 % errors, lognormal latency, median 100 ms, sigma 0.5) over full rollouts with its
95 % Clopper-Pearson interval and the time to promotion; a canary exactly at the error margin
(3 % errors: the least favourable null, bound alpha/3); and the detection rate (aborted before
the canary reaches 50 % of traffic) and median time to abort for twice the errors and for a 30 %
slower canary. Traffic is simulated per window as counts plus at most 1,000 latencies per arm
(core/deployments/canary_simulation.py). Appends the table and the command to RESULTS.md.

``--quality`` runs the quality-metric table instead: ``canary.quality_metrics = ["recall.owl",
"macro_f1"]``, 20 % of requests labelled, four classes (sparrow 85 %, owl, bat, frog 5 % each),
stable recall 0.90 on every class. Canaries: identical; owl recall exactly at the 0.05 margin
(0.85, the least favourable null for recall.owl, bound alpha/5); owl recall halved (0.45) with
sparrow recall raised so that overall accuracy stays 0.90, which accuracy alone cannot see.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime

from machine import RESULTS, ROOT, cpu_model
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(ROOT))
console = Console(width=160)  # the table is wide; files and pipes get it whole

BIRDS = ("sparrow", "owl", "bat", "frog")
MIX = (0.85, 0.05, 0.05, 0.05)
GOOD = (0.9, 0.9, 0.9, 0.9)
QUALITY_SCENARIOS = (  # name, canary per-class recall
    ("identical", None),
    ("owl recall at margin (0.85)", (0.9, 0.85, 0.9, 0.9)),
    ("owl recall halved, same accuracy", (0.9 + 0.05 * 0.45 / 0.85, 0.45, 0.9, 0.9)),
)

SCENARIOS = (  # name, canary error rate, canary median ms
    ("identical", None, None),
    ("at error margin (3 %)", 0.03, None),
    ("2x errors (4 %)", 0.04, None),
    ("+30 % latency", None, 130.0),
)


def hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


def rate(k: int, n: int, interval: tuple[float, float]) -> str:
    return f"{k}/{n} = {k / n:.1%} [{interval[0]:.1%}, {interval[1]:.1%}]"


def main() -> None:
    from core.deployments import DeploymentConfig
    from core.deployments.canary_simulation import Scenario, simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=500)
    parser.add_argument("--rps", type=float, nargs="+", default=[2, 10, 100])
    parser.add_argument("--intervals", type=float, nargs="+", default=[60, 600])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--quality", action="store_true", help="the quality-metric table")
    args = parser.parse_args()
    if args.quality:
        quality_table(args)
        return

    config = DeploymentConfig(model_id="simulated", version="v0", canary_deployment=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    header = ("rps", "interval", "canary", "aborted [95% CI]", "aborted before 50 %",
              "median to abort", "promoted", "median to 100 %")  # fmt: skip
    rows = []
    for rps in args.rps:
        for interval in args.intervals:
            for i, (name, errors, median) in enumerate(SCENARIOS):
                scenario = Scenario(rps=rps, canary_error_rate=errors, canary_median_ms=median,
                                    interval_s=interval)  # fmt: skip
                seed = args.seed + 1000 * i + int(rps * 10) + int(interval)
                r = simulate(config, scenario, args.rollouts, seed=seed)
                row = (f"{rps:g}", f"{interval:g} s", name,
                       rate(r.aborted, r.rollouts, r.abort_interval),
                       rate(r.aborted_below_50, r.rollouts, r.below_50_interval),
                       hours(r.median_abort_s), f"{r.promoted}/{r.rollouts}",
                       hours(r.median_promote_s))  # fmt: skip
                rows.append(row)
                console.print(" | ".join(row))
    elapsed = time.perf_counter() - started

    report(args, "Canary policy, default configuration (alpha 0.05)",
           "Canary policy operating characteristics", header, rows, load, elapsed, [
        "- default DeploymentConfig canary (steps 5/25/50/100, 8 h each, alpha 0.05 split over "
        "errors/latency/accuracy, error margin 1 point, latency tolerance 20 % + 5 ms at p90); "
        "stable 2 % errors, lognormal latency median 100 ms, sigma 0.5; seeded",
    ])  # fmt: skip


def quality_table(args) -> None:
    from core.deployments import DeploymentConfig
    from core.deployments.canary_simulation import Scenario, simulate

    canary = {"quality_metrics": ["recall.owl", "macro_f1"]}
    config = DeploymentConfig(model_id="simulated", version="v0", canary_deployment=True,
                              canary=canary)  # fmt: skip
    load = os.getloadavg()[0]
    started = time.perf_counter()
    header = ("rps", "interval", "canary", "aborted [95% CI]", "aborted before 50 %",
              "abort metrics", "median to abort", "promoted")  # fmt: skip
    rows = []
    for rps in args.rps:
        for interval in args.intervals:
            for i, (name, recall) in enumerate(QUALITY_SCENARIOS):
                scenario = Scenario(rps=rps, interval_s=interval, feedback_rate=0.2,
                                    class_mix=MIX, stable_recall=GOOD, canary_recall=recall,
                                    class_names=BIRDS)  # fmt: skip
                seed = args.seed + 1000 * i + int(rps * 10) + int(interval)
                r = simulate(config, scenario, args.rollouts, seed=seed)
                metrics = ", ".join(f"{k} {v}" for k, v in sorted(r.abort_metrics.items()))
                row = (f"{rps:g}", f"{interval:g} s", name,
                       rate(r.aborted, r.rollouts, r.abort_interval),
                       rate(r.aborted_below_50, r.rollouts, r.below_50_interval),
                       metrics or "-", hours(r.median_abort_s),
                       f"{r.promoted}/{r.rollouts}")  # fmt: skip
                rows.append(row)
                console.print(" | ".join(row))
    elapsed = time.perf_counter() - started
    report(args, "Canary policy with recall.owl and macro_f1 (alpha 0.05 over 5)",
           "Canary quality metrics from feedback", header, rows, load, elapsed, [
        "- default canary policy plus quality_metrics [recall.owl, macro_f1], quality_margin "
        "0.05 (alpha 0.05 split five ways: 0.01 each); 20 % of successful requests labelled; "
        "classes sparrow/owl/bat/frog at 85/5/5/5 %, stable recall 0.90 each, mistakes spread "
        "evenly; stable 2 % errors, latency median 100 ms, sigma 0.5; seeded",
    ])  # fmt: skip


def report(args, title: str, heading: str, header, rows, load: float, elapsed: float,
           notes: list[str]) -> None:  # fmt: skip
    """Print the table; unless --no-append, append it to RESULTS.md with the machine, the
    command and ``notes`` (one bullet each)."""
    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.no_append:
        return
    command = ".venv/bin/python benchmarks/canary_sim.py " + " ".join(sys.argv[1:])
    lines = [
        f"\n## {heading} ({datetime.now():%Y-%m-%d %H:%M})\n",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}, Python "
        f"{platform.python_version()}; 1-minute load average {load:.1f} before; {elapsed:.0f} s",
        f"- command: `{command.strip()}`",
        *notes,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
