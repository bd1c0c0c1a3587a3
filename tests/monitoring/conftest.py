"""A running server (real uvicorn on a free loopback port) over a home with one deployment."""

from __future__ import annotations

import httpx
import pytest
import torch

from core import ModelMetadata, ModelStatus, get_model_registry
from inference.architectures import build_model

LABELS = ["owl", "hawk", "sparrow", "robin", "background"]


def register(version: str, seed: int = 0) -> None:
    torch.manual_seed(seed)
    get_model_registry().register_model(
        build_model("small_cnn", len(LABELS)),
        ModelMetadata(
            model_id="wd",
            version=version,
            status=ModelStatus.VALIDATION,
            training_config={"labels": LABELS},
        ),
    )


@pytest.fixture
def served(sqlite_ctx):
    """(base url, deployment manager) with wd:v1 and wd:v2 registered and v1 deployed."""
    from core.deployments import DeploymentConfig, get_deployment_manager
    from core.server.app import create_app
    from core.server.runner import BackgroundServer

    register("v1", 1)
    register("v2", 2)
    manager = get_deployment_manager()
    manager.deploy_model(DeploymentConfig(model_id="wd", version="v1", deployment_id="prod"))
    server = BackgroundServer(port=0, app=create_app(manager, background=False)).start()
    try:
        yield server.url, manager
    finally:
        server.stop()


@pytest.fixture
def client(served):
    with httpx.Client(base_url=served[0], timeout=30) as c:
        yield c
