"""The drift test by seeded simulation: false alarms per day with no drift (the stated bound is
FALSE_ALARMS_PER_DAY), and how fast a shifted class mix is caught. Appends to RESULTS.md."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

from machine import RESULTS, cpu_model
from rich.console import Console
from rich.table import Table
from scipy.stats import binomtest

from core.quality.drift import ALPHA_PER_TEST, FALSE_ALARMS_PER_DAY
from core.quality.drift_simulation import simulate_days

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5000, help="simulated days per null row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()

    rows = []
    for window_n in (60, 200, 500, 2000):
        r = simulate_days(args.days, window_n=window_n, seed=args.seed + window_n)
        ci = binomtest(r.alarm_days, r.days).proportion_ci(0.95)
        rows.append((f"no drift, {window_n:,} predictions/hour", f"{r.rate_per_day:.2%}",
                     f"95% CI {ci.low:.2%}-{ci.high:.2%}; {r.alarm_days} of {r.days:,} days; "
                     f"bound {FALSE_ALARMS_PER_DAY:.0%}"))  # fmt: skip
    for shift in (0.02, 0.05, 0.1):
        r = simulate_days(500, class_shift=shift, seed=args.seed + 1)
        looks = f"{r.alarm_looks / r.looks:.1%} of hourly looks alarm"
        rows.append((f"class mix shifted by {shift:.0%} (500/hour)", f"{r.rate_per_day:.1%}",
                     f"days with an alarm; {looks}"))  # fmt: skip

    table = Table(title=f"Drift test (alpha {ALPHA_PER_TEST:.2e} per test, 48 tests a day)")
    for column, justify in (("case", "left"), ("alarm days", "right"), ("notes", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.no_append:
        return
    command = " ".join([".venv/bin/python", "benchmarks/drift_sim.py", *sys.argv[1:]])
    lines = [
        "",
        f"## Drift false alarms, seeded simulation ({datetime.now().strftime('%Y-%m-%d %H:%M')})",
        "",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}",
        f"- command: `{command}`",
        "- each simulated day: a new version's reference (1,500 predictions, its first hours),",
        "  then 24 hourly looks, each a class-mix and a confidence-histogram chi-square test",
        "",
        "| case | alarm days | notes |",
        "|---|---:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
