"""Start-up stays cheap: the listing commands and --help never import scipy, torch or FastAPI
(scipy.stats alone costs about a second) and, on a SQLite home at the current schema, neither
SQLAlchemy, SQLModel, numpy nor the services: they read through ``core.direct_reads``, which must
print exactly what the services' path prints. Each command runs in a fresh interpreter on a
real home that holds a model, a deployment, an experiment, audit entries and events.

pydantic is not on the list: Typer (0.29) builds a pydantic TypeAdapter to coerce each
option's value, so every command but ``--help`` imports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_helpers import register_version

from core.deployments import DeploymentConfig, get_deployment_manager
from core.experiments import ExperimentConfig, get_ab_test_manager

HEAVY = ("scipy", "torch", "fastapi", "starlette", "uvicorn", "textual")
# What the direct read path leaves out (the services, their ORM and numpy), on SQLite.
SERVICES = (
    "sqlalchemy",
    "sqlmodel",
    "numpy",
    "psutil",
    "alembic",
    "core.context",
    "core.registry",
    "core.experiments.manager",
    "core.deployments.manager",
    "core.deployments.tracker",
)
COMMANDS = [
    ["--help"],
    ["registry", "list"],
    ["experiment", "list"],
    ["deployment", "list"],
    ["audit"],
    ["events"],
]


@pytest.fixture
def busy_home(sqlite_ctx) -> Path:
    register_version("wd", "v1.0.0")
    register_version("wd", "v2.0.0", seed=1)
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id="wd", version="v1.0.0", deployment_id="wd_prod")
    )
    ab = get_ab_test_manager()
    ab.create_experiment(
        ExperimentConfig(
            experiment_id="ab",
            name="ab",
            model_variants={"control": "wd:v1.0.0", "treatment": "wd:v2.0.0"},
            traffic_allocation={"control": 50.0, "treatment": 50.0},
            success_metrics=["accuracy"],
        )
    )
    ab.start_experiment("ab")
    return sqlite_ctx.settings.home


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_listing_commands_import_no_scipy_torch_or_fastapi(busy_home, command) -> None:
    code = (
        "import json, sys\n"
        "from nightscan_tui.cli import app\n"
        f"try:\n    app({command!r})\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code in (0, None), done.stdout + done.stderr
    assert "wd" in done.stdout or command == ["--help"]  # it really listed the home's rows
    packages = {m.split(".")[0] for m in modules}
    assert sorted(set(HEAVY) & packages) == []
    assert sorted(set(SERVICES) & (packages | set(modules))) == []


def _nightscan(home: Path, *args: str, direct: bool) -> str:
    env = {
        **os.environ,
        "NIGHTSCAN_HOME": str(home),
        "NIGHTSCAN_DIRECT_READS": "1" if direct else "0",
        "COLUMNS": "160",
        "TZ": "UTC",
    }
    done = subprocess.run(
        [sys.executable, "-m", "nightscan_tui.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize("command", COMMANDS[1:], ids=" ".join)
def test_listing_commands_print_the_same_through_either_path(busy_home, command) -> None:
    """Tables and --json alike, with the direct reads and with the services (the last on the
    other path: the services may write, e.g. the deployment manager's start-up check)."""
    for args in (command, [*command, "--json"]):
        direct = _nightscan(busy_home, *args, direct=True)
        assert direct == _nightscan(busy_home, *args, direct=False)
        assert "wd" in direct
