"""The HTTP contract, held by a fuzzer: schemathesis against a real server (uvicorn on a free
loopback port, a temporary home with a deployed model), once without a token and once with an
admin token. Every schemathesis check runs (scripts/schemathesis.toml says where one is
relaxed, and why): no server error (5xx), no answer the schema does not describe (status,
content type, headers, body), 405 with an exact Allow, schema-invalid requests refused and
schema-valid ones accepted.

    .venv/bin/python scripts/contract_check.py [--max-examples N] [--seed S]

Bounded: ``--max-examples`` per operation and phase (default 15; a run takes about a minute or
two per pass on 2 cores). ``make contract`` runs it; ``.ci/run`` calls that after ``make test``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")


def start_server(home: Path):
    """Register two versions, deploy one, mint an admin token, serve; returns (server, token)."""
    import torch

    from core import ModelMetadata, ModelStatus, configure, get_model_registry
    from core.auth import get_token_store
    from core.deployments import DeploymentConfig, get_deployment_manager
    from core.server.app import create_app
    from core.server.runner import BackgroundServer
    from inference.architectures import build_model

    configure(home)
    labels = ["owl", "hawk", "sparrow", "robin", "background"]
    for i, version in enumerate(("v1.0.0", "v2.0.0")):
        torch.manual_seed(i)
        meta = ModelMetadata(
            model_id="wildlife_detector",
            version=version,
            status=ModelStatus.VALIDATION,
            architecture="small_cnn",
            training_config={"labels": labels},
        )
        get_model_registry().register_model(build_model("small_cnn", len(labels)), meta)
    manager = get_deployment_manager()
    manager.deploy_model(
        DeploymentConfig(
            model_id="wildlife_detector", version="v1.0.0", deployment_id="wd_prod",
            max_audio_seconds=5.0,
        )
    )  # fmt: skip
    _, token = get_token_store().create("admin", "contract-check")
    app = create_app(manager, background=False)
    return BackgroundServer(host="127.0.0.1", port=0, app=app).start(), token


def fuzz(url: str, token: str | None, args: argparse.Namespace, report: Path) -> int:
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file", str(CONFIG),
        "run", f"{url}/openapi.json",
        "--max-examples", str(args.max_examples), "--seed", str(args.seed),
        "--phases", "examples,coverage,fuzzing", "--workers", "1", "--no-color",
        "--generation-database", "none", "--suppress-health-check", "all",
        "--request-timeout", "30", "--report", "ndjson", "--report-ndjson-path", str(report),
    ]  # fmt: skip
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    print(f"contract: {'admin token' if token else 'no token'}: {' '.join(command[3:5])} ...")
    # Run in the temporary folder: schemathesis keeps a crash cache in its working directory.
    return subprocess.run(command, check=False, cwd=report.parent).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=15)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nightscan-contract-") as tmp:
        os.environ["NIGHTSCAN_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("NIGHTSCAN_DATABASE_URL", None)
        server, token = start_server(Path(tmp) / "home")
        try:
            codes = [
                fuzz(server.url, None, args, Path(tmp) / "anonymous.ndjson"),
                fuzz(server.url, token, args, Path(tmp) / "admin.ndjson"),
            ]
        finally:
            server.stop()
    print(f"contract: exit codes {codes} (0 = no server errors, no schema violations)")
    return 0 if codes == [0, 0] else 1


if __name__ == "__main__":
    raise SystemExit(main())
