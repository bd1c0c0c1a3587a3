"""The console as a whole: every screen, help, the palette, read-only mode, filters."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import settle
from textual.widgets import DataTable, Input

from nightscan_tui.app import make_app
from screens.commands import screen_commands
from screens.deployments import DeploymentsScreen
from screens.events import EventsScreen
from screens.experiments import ExperimentsScreen
from screens.modals.help import HelpModal
from screens.modals.transition import TransitionModal
from screens.registry import RegistryScreen

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def test_every_screen_shows_its_data(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        expected = [
            ("1", RegistryScreen, "#versions", 4),
            ("2", ExperimentsScreen, "#experiments", 3),
            ("3", DeploymentsScreen, "#deployments", 1),
            ("4", EventsScreen, "#feed", 10),
        ]
        for key, screen_type, table_id, at_least in expected:
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, screen_type)
            assert app.screen.query_one(table_id, DataTable).row_count >= at_least


async def test_help_lists_every_binding_and_closes(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        sections = dict(app.screen.sections)
        keys = {k for rows in sections.values() for k, _d in rows}
        assert {"space", "c", "t", "s", "/", "1", "2", "3", "4", "q"} <= keys
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, RegistryScreen)


async def test_palette_offers_the_current_screens_actions(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        labels = [label for label, _cb, _h in screen_commands(app.screen, app)]
        assert "Registry: Status" in labels and "Go to Deployments" in labels
        await pilot.press("3")
        await settle(pilot)
        labels = [label for label, _cb, _h in screen_commands(app.screen, app)]
        assert "Deployments: Roll back" in labels
        assert "Deployments: watch wildlife_prod" in labels
        assert not any(label.startswith("Registry:") for label in labels)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("colon")  # k9s-style jump opens the palette too
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"


async def test_read_only_refuses_and_hides_mutations(console_home: Path) -> None:
    app = make_app(read_only=True, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert not isinstance(app.screen, TransitionModal)
        assert any("read-only" in n.message for n in app._notifications)
        labels = [label for label, _cb, _h in screen_commands(app.screen, app)]
        assert "Registry: Status" not in labels
        assert "t" not in {b.binding.key for b in app.screen.active_bindings.values()}
        await pilot.press("ctrl+r")  # changes allowed again at run time
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TransitionModal)


async def test_filter_narrows_enter_keeps_it_and_escape_clears_it(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#versions", DataTable)
        every = table.row_count
        await pilot.press("slash")
        filter_input = app.screen.query_one("#filter", Input)
        assert app.focused is filter_input
        filter_input.value = "model:wildlife"  # typing every key is slow; the event is the same
        await pilot.pause()
        assert table.row_count == 3 < every
        await pilot.press("enter")  # back to the list, the filter kept
        assert app.focused is table
        assert table.row_count == 3 and table.border_subtitle == "filtered"
        await pilot.press("slash", *" v1.1")  # free text on top of the field filter
        await pilot.pause()
        assert table.row_count == 1
        assert [str(k.value) for k in table.rows] == ["wildlife_detector:v1.1.0"]
        await pilot.press("escape")  # clears the filter and returns to the list
        await pilot.pause()
        assert app.focused is table and filter_input.value == ""
        assert table.row_count == every and table.border_subtitle == ""
        # A key this screen does not know is named, not silently matched against nothing.
        filter_input.value = "colour:red"
        await pilot.pause()
        assert table.row_count == 0
        assert table.border_subtitle == (
            "filtered · unknown key colour: (keys: model, status, tag, arch); matched as text"
        )
        await pilot.press("slash", "escape", "4")
        await settle(pilot)
        feed = app.screen.query_one("#feed", DataTable)
        app.screen.query_one("#filter", Input).value = "severity:warning"
        await pilot.pause()
        assert feed.row_count == 1


async def test_theme_change_recolours_with_the_theme(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        before = screen.tones
        app.theme = "textual-light"
        await pilot.pause()
        assert screen.tones != before
        app.theme = "ansi-dark"  # follows the terminal's own palette
        await pilot.pause()
        assert screen.tones.good.number == 2  # ANSI green, not a fixed RGB
        status = screen.table.get_cell("wildlife_detector:v1.1.0", "status")
        assert str(status) == "DEPLOYED" and status.style.color.number == 2


async def test_footer_rebuilds_leave_no_detached_keys_behind(console_home: Path) -> None:
    """Textual's footer keeps a watcher per key it ever built (textual#6666); the console's
    footer drops those of detached keys, so moving around does not grow memory."""
    from textual.widgets._footer import FooterKey

    from screens.widgets.footer import LeanFooter

    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for _ in range(3):
            for key in ("down", "down", "up", "2", "3", "4", "1"):
                await pilot.press(key)
                await pilot.pause()
        await settle(pilot)
        footer = app.screen.query_one(LeanFooter)
        watchers = getattr(footer, "__watchers")["compact"]
        keys = list(footer.query(FooterKey))
        assert keys and all(node.is_attached for node, _cb in watchers)
        assert len(watchers) <= len(keys)


async def test_help_lists_the_consoles_own_keys_before_textuals(console_home: Path) -> None:
    from nightscan_tui.app import NightScanApp
    from screens.modals.help import HelpModal

    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, HelpModal)
        rows = dict(modal.sections)["Everywhere"]
        labels = [label for _key, label in rows]
        ours = {b.description for b in NightScanApp.BINDINGS} | {
            "Back: leave the detail view, the filter or a dialog"
        }
        back = labels.index("Back: leave the detail view, the filter or a dialog")
        assert {"Help", "Quit"} <= set(labels[:back])
        assert set(labels[: back + 1]) <= ours, labels
        assert labels[back + 1 :], "Textual's own keys are listed too, after ours"


async def test_events_give_the_message_the_room(console_home: Path) -> None:
    """At 120 columns every column stays and the message is the widest of them, kind and source
    giving way before it goes under 40."""
    app = make_app(cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        table = app.screen.query_one("#feed", DataTable)
        widths = {str(c.key.value): c.width for c in table.columns.values()}
        assert list(widths) == ["time", "type", "severity", "kind", "source", "message"]
        assert widths["message"] >= 40
        assert widths["message"] > max(w for k, w in widths.items() if k != "message")


async def test_events_kind_and_source_get_their_content_width(console_home: Path) -> None:
    """On a wide terminal a long kind and source show whole, and a later, longer one widens
    its column; the message keeps the rest."""
    import core.events

    core.events.emit("deployment.invariant_repaired", "fixed", source="wildlife_detector_prod")
    app = make_app(cursor_blink=False)
    async with app.run_test(size=(240, 40)) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        table = app.screen.query_one("#feed", DataTable)

        def widths() -> dict[str, int]:
            return {str(c.key.value): c.width for c in table.columns.values()}

        def widest(column: str) -> int:
            return max(len(getattr(e, column)) for e in app.screen.entries)

        assert widths()["kind"] == widest("kind") >= len("deployment.invariant_repaired")
        assert widths()["source"] == widest("source") >= len("wildlife_detector_prod")
        assert widths()["message"] >= 40
        core.events.emit("alert.firing", "late", source="accuracy_improvement_test_b")
        app.screen._load()
        await settle(pilot)
        assert widths()["source"] == widest("source") == len("accuracy_improvement_test_b")
        assert widths()["message"] >= table.size.width - 4 - 12 - sum(
            w for k, w in widths().items() if k != "message"
        )
        assert table.row_count == len(app.screen.entries)


async def test_the_footer_says_how_many_keys_it_could_not_show(console_home: Path) -> None:
    from textual.widgets._footer import FooterKey, FooterLabel

    from screens.widgets.footer import LeanFooter

    def shown_actions(app) -> list[str]:
        found: list[str] = []
        for _node, binding, _enabled, _tip in app.screen.active_bindings.values():
            if binding.show and binding.action not in found:
                found.append(binding.action)
        return found

    app = make_app(cursor_blink=False)
    async with app.run_test(size=(60, 30)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        footer = app.screen.query_one(LeanFooter)
        keys = [k.action for k in footer.query(FooterKey)]
        assert keys
        everything = shown_actions(app)
        assert len(keys) < len(everything)
        more = footer.query_one("#footer-more", FooterLabel)
        assert str(more.render()) == f"+{len(everything) - len(keys)} more: ? lists all"
        assert keys == everything[: len(keys)]
        await pilot.resize_terminal(220, 30)
        await settle(pilot)
        footer = app.screen.query_one(LeanFooter)
        everything = [
            k.action for k in footer.query(FooterKey) if not k.has_class("-command-palette")
        ]
        assert everything == shown_actions(app)
        assert not footer.query("#footer-more")


async def test_palette_lists_the_consoles_commands_before_textuals(console_home: Path) -> None:
    from textual.command import CommandList

    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        options = app.screen.query_one(CommandList)
        for _ in range(50):  # the palette gathers its hits in a worker
            await pilot.pause(0.05)
            if options.option_count:
                break
        helps = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        textual = [i for i, text in enumerate(helps) if "Textual ·" in text]
        ours = [i for i, text in enumerate(helps) if "Registry: Status" in text]
        assert ours and textual, helps
        assert max(ours) < min(textual)
        assert [i for i, text in enumerate(helps) if "Textual ·" not in text] == list(
            range(min(textual))
        )


@pytest.mark.parametrize(("key", "table_id"), [("1", "#versions"), ("2", "#experiments")])
async def test_escape_in_the_list_clears_an_applied_filter(
    console_home: Path, key: str, table_id: str
) -> None:
    """Enter keeps the filter and hands the focus to the list; Esc there clears it (it used to
    clear it only while the filter field had the focus, leaving the list filtered)."""
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(key)
        await settle(pilot)
        table = app.screen.query_one(table_id, DataTable)
        every = table.row_count
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "nothing-matches-this"
        await pilot.press("enter")
        await pilot.pause()
        assert app.focused is table and table.row_count == 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#filter", Input).value == ""
        assert table.row_count == every > 0 and table.border_subtitle == ""


async def test_escape_clears_the_marks_before_the_filter(console_home: Path) -> None:
    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#versions", DataTable)
        await pilot.press("slash")
        screen.query_one("#filter", Input).value = "model:wildlife"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert len(screen.marked) == 1
        await pilot.press("escape")
        await settle(pilot)
        assert screen.marked == [] and table.row_count == 3  # the marks went, the filter stayed
        await pilot.press("escape")
        await settle(pilot)
        assert table.row_count == 4


async def test_a_filter_that_hides_every_row_empties_the_detail(console_home: Path) -> None:
    from screens.widgets.detail_pane import DetailPane

    app = make_app(cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pane = app.screen.query_one(DetailPane)
        first = str(next(iter(app.screen.query_one("#versions", DataTable).rows)).value)
        assert first in pane.plain_text()
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "nothing-matches-this"
        await pilot.press("enter")
        await settle(pilot)
        text = pane.plain_text()
        assert "Nothing matches the filter" in text and first not in text
        assert pane.border_title == "Detail"
        await pilot.press("escape")  # the rows come back, and so does a detail
        await settle(pilot)
        assert first in pane.plain_text()
