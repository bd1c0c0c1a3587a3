"""Shared fixtures: a real home folder per test, on SQLite always and on PostgreSQL when
``NIGHTSCAN_TEST_POSTGRES_URL`` is set (each test gets a schema of its own, dropped afterwards)."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

POSTGRES_URL = os.environ.get("NIGHTSCAN_TEST_POSTGRES_URL")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="NIGHTSCAN_TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever touches the user's real home or database."""
    monkeypatch.setenv("NIGHTSCAN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NIGHTSCAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("NIGHTSCAN_ACTOR", "tester")


def _postgres_schema_url() -> Iterator[str]:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'nightscan.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def ctx(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A configured core context (home folder + database), closed after the test."""
    from core import context

    monkeypatch.setenv("NIGHTSCAN_DATABASE_URL", database_url)
    c = context.configure(tmp_path / "home", database_url)
    yield c
    c.close()
    context._context = None


@pytest.fixture
def sqlite_ctx(tmp_path: Path):
    """A core context on SQLite only (for tests that need no backend matrix)."""
    from core import context

    c = context.configure(tmp_path / "home")
    yield c
    c.close()
    context._context = None


# A model package written per test: factories around small_cnn whose forward can be told to
# fail or to sleep (a module-level switch), or that always fail in one way.
MODELS_SOURCE = textwrap.dedent(
    """
    import time

    import torch
    from torch import nn

    from inference.architectures import build_small_cnn

    STATE = {"fail": False, "delay": 0.0, "barrier": None}


    class Flaky(nn.Module):
        def __init__(self, num_classes, features=None):
            super().__init__()
            self.inner = build_small_cnn(num_classes, features)

        def forward(self, x):
            if STATE["delay"]:
                time.sleep(STATE["delay"])
            if STATE["fail"]:
                raise RuntimeError("flaky model: forward failed")
            if STATE["barrier"] is not None:  # meet the other model's forward (or fail)
                STATE["barrier"].wait()
            return self.inner(x)


    class Broken(Flaky):
        def forward(self, x):
            raise RuntimeError("broken model: forward always fails")


    class NotProbabilities(Flaky):
        def forward(self, x):
            return torch.full((x.shape[0], 5), float("nan"))


    class Slow(Flaky):
        def forward(self, x):
            time.sleep(0.3)
            return self.inner(x)


    def flaky(num_classes, features=None):
        return Flaky(num_classes, features)


    def broken(num_classes, features=None):
        return Broken(num_classes, features)


    def nan_output(num_classes, features=None):
        return NotProbabilities(num_classes, features)


    def slow(num_classes, features=None):
        return Slow(num_classes, features)
    """
)


@pytest.fixture
def models_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    name = f"ns_test_models_{uuid.uuid4().hex[:10]}"
    folder = tmp_path / "models_pkg"
    folder.mkdir()
    (folder / f"{name}.py").write_text(MODELS_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)
