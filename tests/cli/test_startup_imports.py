"""Start-up stays cheap: the listing commands and --help never import scipy, torch or FastAPI
(scipy.stats alone costs about a second). Each command runs in a fresh interpreter on a real
home that holds a model, a deployment, an experiment, audit entries and events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from model_helpers import register_version

from core.deployments import DeploymentConfig, get_deployment_manager
from core.experiments import ExperimentConfig, get_ab_test_manager

HEAVY = ("scipy", "torch", "fastapi", "starlette", "uvicorn", "textual")
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
        "print(json.dumps([code, sorted(m.split('.')[0] for m in sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code in (0, None), done.stdout + done.stderr
    assert "wd" in done.stdout or command == ["--help"]  # it really listed the home's rows
    assert sorted(set(HEAVY) & set(modules)) == []
