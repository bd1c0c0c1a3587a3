"""Snapshots of every screen at 120x40 on the seeded home, with the clock, the tracker and the
cursor blink frozen. Regenerate after an intended change with ``pytest --snapshot-update``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from pilot_helpers import settle
from textual.pilot import Pilot

from nightscan_tui.app import make_app

SIZE = (120, 40)

pytestmark = pytest.mark.usefixtures("frozen_screens")


def steps(*keys: str, select: str | None = None) -> Callable[[Pilot], Awaitable[None]]:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if select is not None:
            table = pilot.app.screen.main_widget
            table.move_cursor(row=table.get_row_index(select))
            await settle(pilot)
        await settle(pilot)

    return run_before


def test_registry(snap_compare) -> None:
    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=steps())


def test_registry_compare(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        table = pilot.app.screen.main_widget
        for ref in ("wildlife_detector:v1.0.0", "wildlife_detector:v2.0.0"):
            table.move_cursor(row=table.get_row_index(ref))
            await settle(pilot)
            await pilot.press("space")
            await settle(pilot)

    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=run_before)


def test_experiments(snap_compare) -> None:
    run_before = steps("2", select="accuracy_test")
    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=run_before)


def test_experiment_bandit_drilled_down(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await steps("2", select="bandit_test")(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=run_before)


def test_deployments(snap_compare) -> None:
    run_before = steps("3")
    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=run_before)


def test_events(snap_compare) -> None:
    run_before = steps("4")
    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=run_before)


def test_help(snap_compare) -> None:
    run_before = steps("question_mark")
    assert snap_compare(make_app(cursor_blink=False), terminal_size=SIZE, run_before=run_before)


def test_read_only_at_80_columns(snap_compare) -> None:
    app = make_app(read_only=True, cursor_blink=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=steps())
