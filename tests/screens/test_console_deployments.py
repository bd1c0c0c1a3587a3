"""Deployments screen: roll back through the confirmation; the live panel follows a server that
answers real requests in a background thread of this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from pilot_helpers import open_screen, settle
from textual.widgets import Checkbox, Input, Select, Static

from core.deployments import get_deployment_manager
from core.server.runner import BackgroundServer
from inference.synthetic import generate_call
from nightscan_tui.app import make_app
from screens.modals.confirm import ConfirmModal
from screens.modals.deploy_form import DeployForm
from screens.widgets.live_panel import LivePanel

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
DEPLOYMENT = "wildlife_prod"


async def test_roll_back_with_confirmation(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3")
        screen = app.screen
        assert screen.selected == DEPLOYMENT
        assert str(screen.table.get_cell(DEPLOYMENT, "model")) == "wildlife_detector:v1.1.0"
        await pilot.press("u")  # undeploy, then think better of it
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("escape")
        await pilot.pause()
        assert get_deployment_manager().get_deployment(DEPLOYMENT).status == "running"

        await pilot.press("b")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert app.focused is modal.query_one("#reason", Input)
        modal.query_one("#reason", Input).value = "p95 regression"
        await pilot.press("enter")
        await settle(pilot)
        info = get_deployment_manager().get_deployment(DEPLOYMENT)
        assert info.version == "v1.0.0" and info.reason == "rolled back: p95 regression"
        await settle(pilot)
        assert str(screen.table.get_cell(DEPLOYMENT, "model")) == "wildlife_detector:v1.0.0"
        assert any("rolled back" in n.message for n in app._notifications)

        await pilot.press("b")  # nothing earlier to go back to: core says so, no traceback
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        errors = [n for n in app._notifications if n.severity == "error"]
        assert errors and "no earlier healthy version" in errors[-1].message
        assert app.is_running and app.screen is screen


async def test_live_panel_updates_while_a_server_answers(console_home: Path) -> None:
    server = BackgroundServer(port=0).start()
    clip = generate_call("owl", np.random.default_rng(0), seconds=1.0).tolist()

    def send(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(n):
                response = client.post(
                    "/predict",
                    params={"deployment_id": DEPLOYMENT, "request_id": f"live-{i}"},
                    json={"audio": clip, "sample_rate": 22_050},
                )
                assert response.status_code == 200, response.text

    try:
        app = make_app(cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await open_screen(pilot, "3")
            panel = app.screen.query_one(LivePanel)
            assert sum(panel.last.get("rps", [])) == 0
            updates = panel.updates
            await asyncio.to_thread(send, 12)
            for _ in range(100):  # the panel polls every second
                if sum(panel.last.get("rps", [])) >= 12:
                    break
                await pilot.pause(0.1)
            assert sum(panel.last["rps"]) >= 12  # per-second counts, not a running total
            assert panel.updates >= updates + 1
            value = str(panel.query_one("#value-rps", Static).render())
            assert "/s" in value
            head = str(panel.query_one("#live-head", Static).render())
            assert "12 requests in the last 60 s" in head
            await asyncio.to_thread(send, 3)  # keeps moving: more traffic, newer numbers
            for _ in range(50):
                if sum(panel.last["rps"]) >= 15:
                    break
                await pilot.pause(0.1)
            assert sum(panel.last["rps"]) >= 15
    finally:
        server.stop()


async def test_deploy_a_canary_pause_and_promote_it(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3")
        screen = app.screen
        await pilot.press("d")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, DeployForm)
        # Opened on a deployment: its id and the newest other version are the defaults.
        assert form.query_one("#version", Select).value == "wildlife_detector:v2.0.0"
        assert form.query_one("#deployment_id", Input).value == DEPLOYMENT
        form.query_one("#canary", Checkbox).value = True
        await pilot.pause()
        assert form.query_one("#traffic", Input).value == "5"
        await pilot.click("#deploy")
        await settle(pilot)
        assert not isinstance(app.screen, DeployForm)
        canaries = get_deployment_manager().canaries
        assert canaries.status(DEPLOYMENT)["weight"] == 5.0
        await settle(pilot)
        assert str(screen.table.get_cell(DEPLOYMENT, "canary")) == "v2.0.0 5%"
        await settle(pilot)
        block = str(screen.query_one("#live-canary", Static).render())
        assert "wildlife_detector:v2.0.0 at 5%" in block

        await pilot.press("z")  # pause, with a confirmation
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        assert canaries.status(DEPLOYMENT)["state"] == "paused"

        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.click("#confirm")
        await settle(pilot)
        assert get_deployment_manager().get_deployment(DEPLOYMENT).version == "v2.0.0"
        await settle(pilot)
        assert str(screen.table.get_cell(DEPLOYMENT, "canary")) == "—"


async def test_live_panel_shows_the_host_total_and_each_process(console_home: Path) -> None:
    """Two serving processes (``serve --workers 2``) persist their own snapshots: the console
    shows their sum above and each of them below."""
    from core import get_context
    from core.deployments.snapshots import SnapshotStore
    from core.deployments.tracker import PerformanceTracker

    for process, requests in (("host:101", 7), ("host:202", 5)):
        tracker = PerformanceTracker()
        for _ in range(requests):
            tracker.record(DEPLOYMENT, "wildlife_detector:v1.1.0", 0.01, True)
        store = SnapshotStore(get_context().db)
        store.process = process
        assert store.maybe_persist(tracker, [DEPLOYMENT], force=True) == 1

    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3")
        panel = app.screen.query_one(LivePanel)
        block = panel.query_one("#live-processes", Static)
        for _ in range(100):
            if block.has_class("-active"):
                break
            await pilot.pause(0.1)
        table = str(block.render())
        assert "over 2 processes" in table and "host:101" in table and "host:202" in table
        head = str(panel.query_one("#live-head", Static).render())
        assert "12 requests in the last 60 s" in head


async def test_live_panel_writes_a_current_value_and_its_max_alike(
    frozen_screens: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: "current memory above its max" (408 MB beside max 407.7 MB, 8% beside 9.5 %)."""
    from dataclasses import replace

    tracker = get_deployment_manager().performance_tracker
    frozen = tracker.get_current_metrics

    def metrics(deployment_id: str, window_seconds: float = 60.0):
        m = frozen(deployment_id, window_seconds)
        return m and replace(m, memory_usage_mb=407.7, cpu_usage_percent=9.5)

    monkeypatch.setattr(tracker, "get_current_metrics", metrics)
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3")
        panel = app.screen.query_one(LivePanel)
        for _ in range(100):
            if panel.updates:
                break
            await pilot.pause(0.1)
        mem = str(panel.query_one("#value-mem", Static).render())
        cpu = str(panel.query_one("#value-cpu", Static).render())
        assert mem == "408 MB  max 408 MB", mem
        assert cpu == "10%  max 10%", cpu


@pytest.mark.parametrize("age_s, stale", [(40, True), (3, False)])
async def test_figures_show_their_age_and_stale_ones_are_marked(
    frozen_screens: None, monkeypatch: pytest.MonkeyPatch, age_s: int, stale: bool
) -> None:
    """Issue 14: after the server stopped, the screen showed its last rps and HEALTHY, no age."""
    from dataclasses import replace
    from datetime import timedelta

    from rich.text import Text
    from textual.widgets import DataTable

    from screens import fmt

    tracker = get_deployment_manager().performance_tracker
    frozen = tracker.get_current_metrics
    taken = fmt.now() - timedelta(seconds=age_s)

    def metrics(deployment_id: str, window_seconds: float = 60.0):
        m = frozen(deployment_id, window_seconds)
        return m and replace(m, timestamp=taken)

    monkeypatch.setattr(tracker, "get_current_metrics", metrics)
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3")
        panel = app.screen.query_one(LivePanel)
        for _ in range(100):
            if panel.updates:
                break
            await pilot.pause(0.1)
        head = str(panel.query_one("#live-head", Static).render())
        table = app.screen.query_one("#deployments", DataTable)
        health = table.get_cell(DEPLOYMENT, "health")
        rps = table.get_cell(DEPLOYMENT, "rps")
        assert isinstance(health, Text) and isinstance(rps, Text)
        if stale:
            assert f"figures: stale, {age_s} s ago (no server is counting now)" in head
            assert health.plain == "HEALTHY?" and rps.style == app.screen.tones.style("muted")
        else:
            assert f"figures: {age_s} s ago" in head and "stale" not in head
            assert health.plain == "HEALTHY" and rps.style != app.screen.tones.style("muted")
