"""``nightscan tui --serve``: the console runs the home's inference endpoint (with its serving
loop and experiment monitor) in its own process; the header says so with the port, the live
panel shows the traffic it serves, and quitting drains the server and writes what it counted."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import numpy as np
import pytest
import soundfile as sf
from model_helpers import register_version
from pilot_helpers import row_keys, settle
from textual.widgets import Static
from typer.testing import CliRunner

from core import ModelStatus
from core.console_services import ServingServices
from core.context import get_context
from core.deployments import DeploymentConfig, get_deployment_manager
from core.deployments.snapshots import SnapshotStore
from inference.synthetic import generate_call
from nightscan_tui.app import make_app
from nightscan_tui.cli import app as cli
from screens.widgets.live_panel import LivePanel
from screens.widgets.nav import NavBar

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
MODEL, DEP = "owl_detector", "owl_prod"
REQUESTS = 4


@pytest.fixture
def served_home(sqlite_ctx):
    register_version(MODEL, "v1.0.0", status=ModelStatus.TESTING)
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id=MODEL, version="v1.0.0", deployment_id=DEP)
    )
    return sqlite_ctx


def _wav() -> bytes:
    samples = generate_call("owl", np.random.default_rng(0), sample_rate=22050, seconds=1.0)
    buffer = io.BytesIO()
    sf.write(buffer, samples, 22050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _predict(url: str, n: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(n):
            files = {"file": (f"clip{i}.wav", _wav(), "audio/wav")}
            answer = http.post("/predict", params={"deployment_id": DEP}, files=files)
            answer.raise_for_status()


def _live_text(app) -> str:
    panel = app.screen.query_one(LivePanel)
    return " ".join(str(w.content) for w in panel.query(Static))


async def test_the_console_serves_its_home_and_drains_on_quit(served_home) -> None:
    services = ServingServices(port=0)
    app = make_app(cursor_blink=False, services=services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)  # the services worker has started the server
            port = services.bound_port
            assert port and services.url == f"http://127.0.0.1:{port}"
            assert app.live_label.startswith(f"serving · {services.url}")
            header = str(app.screen.query_one(NavBar).content)
            assert f"serving :{port}" in header or app.live_label in header
            assert any(
                f"inference server on {services.url}" in n.message for n in app._notifications
            )

            await pilot.press("3")
            await settle(pilot)
            screen = app.screen
            screen.load_live(DEP)
            await settle(pilot)
            idle = _live_text(app)  # before any request: idle, and served by this console
            assert f"this console serves it on :{port}; it is idle" in idle, idle
            assert "no server is serving it" not in idle

            await asyncio.to_thread(_predict, services.url, REQUESTS)
            assert row_keys(screen.table) == [DEP]
            deadline = time.monotonic() + 30
            while f"{REQUESTS} requests in the last" not in _live_text(app):
                assert time.monotonic() < deadline, _live_text(app)
                screen.load_live(DEP)
                await settle(pilot)
            assert "no server is serving it" not in _live_text(app)
            await pilot.press("q")
        assert services.server.thread.is_alive()  # the caller stops them (run_console does)
    finally:
        services.stop()
    assert not services.server.thread.is_alive()
    # The drain wrote what was counted: the last snapshot holds every request.
    persisted = SnapshotStore(get_context().db).latest(DEP)
    assert persisted is not None and persisted.requests_in_window == REQUESTS


def test_serve_and_server_exclude_each_other() -> None:
    result = CliRunner().invoke(cli, ["tui", "--serve", "--server", "http://x", "--token", "t"])
    assert result.exit_code == 2, result.output
    assert "--serve serves a home" in result.output
