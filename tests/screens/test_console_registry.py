"""Registry screen: sort, compare two versions, a lifecycle move through the confirmation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import row_keys, settle
from textual.widgets import DataTable, Input, OptionList

from core import get_model_registry
from nightscan_tui.app import make_app
from screens.modals.transition import TransitionModal
from screens.widgets.detail_pane import DetailPane

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
MODEL = "wildlife_detector"


def detail_text(app) -> str:
    return app.screen.query_one(DetailPane).plain_text()


async def test_sort_by_key_and_by_header(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#versions", DataTable)
        assert row_keys(table)[0] == "owl_detector:v0.1.0"  # model id, then semantic version
        await pilot.press("s", "s", "s")  # model -> version -> status -> accuracy
        await pilot.pause()
        assert screen.sort_key == "accuracy"
        assert row_keys(table)[0] == "owl_detector:v0.1.0"  # lowest accuracy first
        await pilot.press("S")
        await pilot.pause()
        assert row_keys(table)[0] == "wildlife_detector:v2.0.0"
        await pilot.click("#versions", offset=(60, 1))  # a header cell: sorts by that column
        await pilot.pause()
        assert screen.sort_key not in ("accuracy", None)


async def test_mark_two_versions_and_compare(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#versions", DataTable)
        table.move_cursor(row=row_keys(table).index("wildlife_detector:v1.0.0"))
        await settle(pilot)
        await pilot.press("space")
        table.move_cursor(row=row_keys(table).index("wildlife_detector:v2.0.0"))
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert screen.marked == ["wildlife_detector:v1.0.0", "wildlife_detector:v2.0.0"]
        diff = screen.compared["metric_differences"]
        assert diff["accuracy"]["percentage_improvement"] == pytest.approx(15.02, abs=0.01)
        assert diff["inference_time_ms"]["better"] == "model_a"  # lower is better
        text = detail_text(app)
        assert "Compare" in text and "+15.02%" in text and "inference_time_ms" in text
        await pilot.press("escape")  # clears the marks: back to the detail
        await settle(pilot)
        assert screen.marked == [] and "Status history" in detail_text(app)


async def test_promote_with_confirmation(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#versions", DataTable)
        assert row_keys(table)[0] == "owl_detector:v0.1.0"  # TRAINING
        await pilot.press("t")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TransitionModal)
        options = modal.query_one("#targets", OptionList)
        offered = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert offered == ["validation", "failed"]  # only what the lifecycle allows
        await pilot.press("enter")  # pick VALIDATION, focus moves to the reason
        assert app.focused is modal.query_one("#reason", Input)
        await pilot.press(*"ok", "enter")
        await settle(pilot)
        assert get_model_registry().get_model("owl_detector", "v0.1.0").status.value == "validation"
        history = get_model_registry().status_history("owl_detector", "v0.1.0")
        assert history[-1].reason == "ok" and history[-1].actor == "tester"
        await settle(pilot)
        status = table.get_cell("owl_detector:v0.1.0", "status")
        assert str(status) == "VALIDATION"


async def test_cancelled_transition_changes_nothing(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        await pilot.press("escape")
        await settle(pilot)
        assert get_model_registry().get_model("owl_detector", "v0.1.0").status.value == "training"


async def test_tags_verify_and_delete(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#versions", DataTable)
        table.move_cursor(row=row_keys(table).index("wildlife_detector:v2.0.0"))
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        field = app.screen.query_one("#reason", Input)
        assert field.value == "candidate, high-accuracy"
        field.value = "candidate, staging"
        await pilot.press("enter")
        await settle(pilot)
        assert get_model_registry().get_model(MODEL, "v2.0.0").tags == ["candidate", "staging"]

        await pilot.press("v")
        await settle(pilot)
        assert any("match sha256" in n.message for n in app._notifications)

        table.move_cursor(row=row_keys(table).index("wildlife_detector:v1.1.0"))
        await settle(pilot)
        assert screen.check_action("delete", ()) is None  # DEPLOYED: not deletable
        table.move_cursor(row=row_keys(table).index("owl_detector:v0.1.0"))
        await settle(pilot)
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#confirm")
        await settle(pilot)
        assert not get_model_registry().exists("owl_detector", "v0.1.0")
        await settle(pilot)
        assert "owl_detector:v0.1.0" not in row_keys(table)


async def select_version(pilot, ref: str) -> None:
    table = pilot.app.screen.query_one("#versions", DataTable)
    table.move_cursor(row=row_keys(table).index(ref))
    await settle(pilot)


async def test_deployed_is_never_offered_and_a_served_version_says_why(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await select_version(pilot, f"{MODEL}:v2.0.0")  # VALIDATION
        await pilot.press("t")
        await pilot.pause()
        options = app.screen.query_one("#targets", OptionList)
        offered = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "deployed" not in offered and "testing" in offered  # deploying sets DEPLOYED
        await pilot.press("escape")
        await settle(pilot)

        served = next(m for m in get_model_registry().list_models() if m.status.value == "deployed")
        await select_version(pilot, served.ref)
        await pilot.press("t")
        await settle(pilot)
        assert not isinstance(app.screen, TransitionModal)
        notes = [n.message for n in app._notifications]
        assert any("a deployment serves it" in n for n in notes), notes
        assert get_model_registry().get_model(MODEL, served.version).status.value == "deployed"
