"""Start-up benchmark: cold start of the listing commands and of `nightscan --help`, each in a
fresh interpreter (median of N runs after one run that warms the page cache), on a home that
holds two models, a deployment with a performance snapshot, a running experiment, audit
entries and events. Wall time is the goal's measure; CPU time (user + system of the child) is
printed beside it because this machine is shared and wall time follows the load.

    .venv/bin/python benchmarks/startup_bench.py [--runs 7] [--home DIR] [--no-append]

The listing commands read a SQLite home through ``core.direct_reads``; with
``NIGHTSCAN_DIRECT_READS=0`` in the environment they take the services (SQLAlchemy) instead.
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
from rich.table import Table

console = Console()
GOALS = {"--help": 0.20}  # seconds; every other command: 0.35
COMMANDS = [
    ["--help"],
    ["registry", "list"],
    ["experiment", "list"],
    ["deployment", "list"],
    ["audit"],
    ["events"],
]


def seed(home: Path) -> None:
    """Two versions, a deployment, a running experiment: what the demo home holds."""
    import torch

    from core import ModelMetadata, ModelStatus, configure, get_model_registry
    from core.deployments import DeploymentConfig, get_deployment_manager
    from core.experiments import ExperimentConfig, get_ab_test_manager
    from inference.architectures import build_model

    configure(home)
    registry = get_model_registry()
    if registry.count_models():
        return
    labels = ["owl", "hawk", "sparrow", "robin", "background"]
    for i, version in enumerate(("v2.0.0", "v2.1.0")):
        torch.manual_seed(i)
        registry.register_model(
            build_model("small_cnn", len(labels)),
            ModelMetadata(
                model_id="wildlife_detector",
                version=version,
                status=ModelStatus.VALIDATION,
                training_config={"labels": labels},
                metrics={"accuracy": 0.8 + i / 10},
            ),
        )
    manager = get_deployment_manager()
    manager.deploy_model(
        DeploymentConfig(model_id="wildlife_detector", version="v2.0.0", deployment_id="prod")
    )
    manager.close()  # writes the deployment's last performance snapshot
    ab = get_ab_test_manager()
    ab.create_experiment(
        ExperimentConfig(
            experiment_id="accuracy_improvement_test",
            name="v2.1 vs v2.0",
            model_variants={
                "control": "wildlife_detector:v2.0.0",
                "treatment": "wildlife_detector:v2.1.0",
            },
            traffic_allocation={"control": 70.0, "treatment": 30.0},
            success_metrics=["accuracy", "confidence"],
        )
    )
    ab.start_experiment("accuracy_improvement_test")


def cold_start(home: Path, runs: int, args: list[str]) -> tuple[list[float], list[float]]:
    """(wall seconds, child CPU seconds) per run."""
    exe = str(Path(sys.executable).with_name("nightscan"))
    env = {**os.environ, "NIGHTSCAN_HOME": str(home), "COLUMNS": "120"}
    subprocess.run([exe, *args], env=env, capture_output=True, check=True)  # page cache
    walls, cpus = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        child = subprocess.Popen(
            [exe, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(child.pid, 0)
        walls.append(time.perf_counter() - t0)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if status != 0:
            raise SystemExit(f"nightscan {' '.join(args)} failed (status {status})")
    return walls, cpus


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7, help="cold runs per command (>= 5)")
    ap.add_argument("--home", type=Path, default=None, help="reuse a seeded home")
    ap.add_argument("--no-append", action="store_true", help="print only")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="nightscan-startup-"))
    seed(home)

    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    load_before = os.getloadavg()[0]
    rows = []
    for command in COMMANDS:
        walls, cpus = cold_start(home, max(5, args.runs), command)
        goal = GOALS.get(command[0], 0.35)
        median = statistics.median(walls)
        rows.append(
            (
                f"`nightscan {' '.join(command)}`",
                ms(median),
                ms(min(walls)),
                ms(statistics.median(cpus)),
                f"{ms(goal)}: {'met' if median <= goal else 'NOT met'}",
            )
        )
    load_after = os.getloadavg()[0]

    table = Table("command", "median wall", "min wall", "median CPU", "goal", title="Cold start")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.no_append:
        return

    direct = os.environ.get("NIGHTSCAN_DIRECT_READS", "1") != "0"
    command = ".venv/bin/python benchmarks/startup_bench.py " + " ".join(sys.argv[1:])
    if not direct:
        command = "NIGHTSCAN_DIRECT_READS=0 " + command
    lines = [
        f"\n## Start-up: cold start of the CLI ({date.today().isoformat()})\n",
        f"- machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}, "
        f"Python {platform.python_version()}",
        f"- command: `{command.strip()}`; listing commands read through "
        + ("`core.direct_reads` (sqlite3)" if direct else "the services (SQLAlchemy)"),
        f"- {max(5, args.runs)} cold runs per command after one that warms the page cache; "
        f"1-minute load average {load_before:.2f} before, {load_after:.2f} after (the machine is "
        "shared: wall time follows the load, CPU time much less)\n",
        "| command | median wall | min wall | median CPU | goal |",
        "|---|---:|---:|---:|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
    ]
    with RESULTS.open("a") as fh:
        fh.write("\n".join(lines))
    console.print(f"appended to {RESULTS.relative_to(ROOT)}; home kept at {home}")


if __name__ == "__main__":
    main()
