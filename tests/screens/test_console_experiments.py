"""Experiments screen: create through the form, start, stop with a reason; the detail."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import open_screen, settle
from textual.widgets import Button, Input, Select, Static

from core.experiments import get_ab_test_manager
from nightscan_tui.app import make_app
from screens.modals.confirm import ConfirmModal
from screens.modals.experiment_form import ExperimentForm
from screens.widgets.detail_pane import DetailPane
from screens.widgets.plain_checkbox import PlainCheckbox

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def test_detail_shows_split_srm_metrics_and_recommendation(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2")
        screen = app.screen
        screen.table.move_cursor(row=screen.table.get_row_index("accuracy_test"))
        await settle(pilot)
        text = screen.query_one(DetailPane).plain_text()
        for expected in ("Traffic split", "sample ratio mismatch", "Metrics · treatment vs control",
                         "accuracy ★", "p always-valid", "Recommendation", "power"):  # fmt: skip
            assert expected in text, expected
        screen.table.move_cursor(row=screen.table.get_row_index("bandit_test"))
        await settle(pilot)
        text = screen.query_one(DetailPane).plain_text()
        assert "Allocation over time" in text and "thompson_sampling" in text
        await pilot.press("enter")  # drill down: the detail fills the screen
        assert screen.maximized is screen.query_one(DetailPane)
        await pilot.press("escape")
        assert screen.maximized is None and app.focused is screen.table


async def test_create_start_and_stop(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2")
        screen = app.screen
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ExperimentForm)
        # Production is the default control, the newest other version the treatment.
        assert form.query_one("#control", Select).value == "wildlife_detector:v1.1.0"
        assert form.query_one("#treatment", Select).value == "wildlife_detector:v2.0.0"
        form.query_one("#split", Input).value = "80"
        await pilot.press("ctrl+s")  # no id yet: core's problems show in the form
        await settle(pilot)
        assert "experiment_id" in str(form.query_one("#form-error", Static).render())
        form.query_one("#experiment_id", Input).value = "console_test"
        await pilot.click("#create")
        await settle(pilot)
        assert not isinstance(app.screen, ExperimentForm)
        info = get_ab_test_manager().get_experiment("console_test")
        assert info.status.value == "draft" and info.allocation == {
            "control": 80.0,
            "treatment": 20.0,
        }
        await settle(pilot)
        assert screen.selected == "console_test"
        assert str(screen.table.get_cell("console_test", "status")) == "DRAFT"

        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("enter")  # the Start button has the focus
        await settle(pilot)
        assert get_ab_test_manager().get_experiment("console_test").status.value == "running"
        await settle(pilot)
        assert str(screen.table.get_cell("console_test", "status")) == "RUNNING"

        await pilot.press("x")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        modal.query_one("#reason", Input).value = "enough"
        await pilot.click("#confirm")
        await settle(pilot)
        info = get_ab_test_manager().get_experiment("console_test")
        assert info.status.value == "stopped" and info.stop_reason == "enough"
        await settle(pilot)
        assert str(screen.table.get_cell("console_test", "status")) == "STOPPED"


async def test_start_is_only_offered_for_drafts(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2")
        screen = app.screen
        screen.table.move_cursor(row=screen.table.get_row_index("accuracy_test"))
        await settle(pilot)
        assert screen.check_action("start", ()) is None  # shown disabled, does nothing
        assert screen.check_action("stop", ()) is True
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
        assert not any(isinstance(b, Button) for b in app.screen.query(Button))


async def test_reallocate_a_running_experiment(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2")
        screen = app.screen
        screen.table.move_cursor(row=screen.table.get_row_index("accuracy_test"))
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        field = app.screen.query_one("#reason", Input)
        assert field.value == "control=70, treatment=30"
        field.value = "control=50, treatment=50"
        await pilot.press("enter")
        await settle(pilot)
        info = get_ab_test_manager().get_experiment("accuracy_test")
        assert info.allocation == {"control": 50.0, "treatment": 50.0}
        assert len(get_ab_test_manager().allocation_history("accuracy_test")) == 2


async def test_start_now_checkbox_reads_the_same_without_colour(console_home: Path) -> None:
    """Off is "[ ]" and on is "[x]": the state is in the characters, not only the colour."""
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2")
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, ExperimentForm)
        box = form.query_one("#start", PlainCheckbox)
        assert box.value is False
        assert str(box.render()).strip() == "[ ] start it now"
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert box.value is True
        assert str(box.render()).strip() == "[x] start it now"
