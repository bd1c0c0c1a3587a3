"""Real servers for the HTTP and OIP tests: uvicorn on a free 127.0.0.1 port in a background
thread, over a real home (SQLite, or PostgreSQL through ``ctx``), with real registered models."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch

from core import ModelMetadata, ModelStatus, get_model_registry
from core.deployments import DeploymentConfig, DeploymentManager, get_deployment_manager
from inference.architectures import build_model
from inference.synthetic import generate_call

MODEL = "wildlife_detector"
LABELS = ["owl", "hawk", "sparrow", "robin", "background"]
DEP = "wd_prod"
MAX_AUDIO_SECONDS = 5.0
SR = 22_050


def register(version: str, seed: int = 0, architecture: str = "small_cnn") -> ModelMetadata:
    torch.manual_seed(seed)
    meta = ModelMetadata(
        model_id=MODEL,
        version=version,
        status=ModelStatus.VALIDATION,
        architecture=architecture,
        training_config={"labels": LABELS},
    )
    get_model_registry().register_model(build_model(architecture, len(LABELS)), meta)
    return meta


def deploy(manager: DeploymentManager, version: str, **kwargs: Any) -> None:
    kwargs.setdefault("max_audio_seconds", MAX_AUDIO_SECONDS)
    manager.deploy_model(
        DeploymentConfig(model_id=MODEL, version=version, deployment_id=DEP, **kwargs)
    )


def call(seconds: float = 1.0, seed: int = 0, label: str = "owl", sr: int = SR) -> np.ndarray:
    return generate_call(label, np.random.default_rng(seed), sample_rate=sr, seconds=seconds)


def wav_bytes(samples: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, format="WAV", subtype=subtype)
    return buffer.getvalue()


@dataclass
class Running:
    url: str
    port: int
    client: httpx.Client
    manager: DeploymentManager


@pytest.fixture
def start_server() -> Iterator[Callable[..., Running]]:
    """``start_server(manager=None, background=False)`` -> a running server; stopped after."""
    from core.server.app import create_app
    from core.server.runner import BackgroundServer

    started: list[tuple[Any, httpx.Client]] = []

    def start(manager: DeploymentManager | None = None, **app_kwargs: Any) -> Running:
        app_kwargs.setdefault("background", False)
        mgr = manager or get_deployment_manager()
        server = BackgroundServer(host="127.0.0.1", port=0, app=create_app(mgr, **app_kwargs))
        server.start()
        client = httpx.Client(base_url=server.url, timeout=60)
        started.append((server, client))
        return Running(server.url, int(server.url.rsplit(":", 1)[1]), client, mgr)

    yield start
    for server, client in reversed(started):
        client.close()
        server.stop()


@pytest.fixture
def served(sqlite_ctx, start_server) -> Running:
    """v1.0.0 and v2.0.0 registered, v1.0.0 deployed as ``wd_prod``, a server over it."""
    register("v1.0.0", seed=1)
    register("v2.0.0", seed=2)
    manager = get_deployment_manager()
    deploy(manager, "v1.0.0")
    return start_server(manager)


class Kit:
    """The helpers above for the test modules (a conftest is not imported by name)."""

    MODEL = MODEL
    LABELS = LABELS
    DEP = DEP
    SR = SR
    MAX_AUDIO_SECONDS = MAX_AUDIO_SECONDS
    register = staticmethod(register)
    deploy = staticmethod(deploy)
    call = staticmethod(call)
    wav_bytes = staticmethod(wav_bytes)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
