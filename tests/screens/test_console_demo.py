"""The console tells the truth about the demo's traffic: with the real demo services running in
its background (server, traffic, monitor, director), requests that keep being refused become a
notification, whatever screen is open."""

from __future__ import annotations

import asyncio
import time

import pytest
from model_helpers import register_version
from pilot_helpers import settle

from core import ModelStatus
from core.demo import DEMO_DEPLOYMENT, DEMO_MODEL, DemoServices
from core.deployments import DeploymentConfig, get_deployment_manager
from nightscan_tui.app import make_app

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


@pytest.fixture
def demo_home(sqlite_ctx):
    register_version(DEMO_MODEL, "v2.0.0", status=ModelStatus.TESTING)
    get_deployment_manager().deploy_model(
        DeploymentConfig(model_id=DEMO_MODEL, version="v2.0.0", deployment_id=DEMO_DEPLOYMENT)
    )
    return sqlite_ctx


async def test_refused_requests_become_a_notification(demo_home) -> None:
    services = DemoServices(port=0, rate_per_s=20, monitor_interval_s=0.5, director_interval_s=0.5)
    app = make_app(cursor_blink=False, services=services)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)  # the services worker has started them
            assert app.live_label.startswith("live · http://127.0.0.1:")
            served = services.traffic.served
            await wait_for(pilot, lambda: services.traffic.served > served + 5)
            assert not any("refused" in n.message for n in app._notifications)

            await asyncio.to_thread(
                get_deployment_manager().undeploy, DEMO_DEPLOYMENT, reason="test"
            )
            await wait_for(
                pilot, lambda: any("being refused" in n.message for n in app._notifications)
            )
            toast = next(n for n in app._notifications if "being refused" in n.message)
            assert toast.severity == "error" and "404" in toast.message
    finally:
        services.stop()


async def wait_for(pilot, condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.2)
