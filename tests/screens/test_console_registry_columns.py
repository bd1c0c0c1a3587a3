"""Registry columns keep their width through filter, sort, tag edits and resizes (issue 14: they
collapsed to a few characters, "2 of 5 tries, until F5").

What is checked is what the terminal shows: every line the table renders, header and rows, cut
at the columns' widths, gives back each label and each cell's whole text. A column whose width
the table knows but whose cells were drawn before that width was known fails here."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from model_helpers import register_version
from pilot_helpers import open_screen, row_keys, settle
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from nightscan_tui.app import make_app
from screens.registry import RegistryScreen

pytestmark = pytest.mark.anyio

LONG = "nocturnal_soundscape_classifier"  # wider than any header: its width comes from the cells


def cell_text(cell: object) -> str:
    return getattr(cell, "plain", str(cell))


def caps(table: DataTable) -> dict[str, int]:
    """The registry's widest columns: the mark, and tags at 80 columns (free text)."""
    keys = {str(c.key.value) for c in table.ordered_columns}
    narrow = "sha256" not in keys
    return {"mark": 1, **({"tags": 18} if narrow else {})}


def assert_columns_fit(table: DataTable, step: str) -> None:
    """Each rendered line, cut at the columns' render widths, shows each label and each cell
    whole (a capped column: its start); each column is as wide as its label and longest cell,
    up to its cap."""
    pad = table.cell_padding
    view = table.scrollable_content_region.width
    columns = table.ordered_columns
    lines = [table.render_line(y).text for y in range(1 + table.row_count)]
    limit = caps(table)
    x = 0
    for column in columns:
        width = column.get_render_width(table) - 2 * pad
        start, end = x + pad, x + pad + width
        x += width + 2 * pad
        if end > view:  # scrolled out of sight at this width: not drawn
            break
        label = column.label.plain
        cells = [cell_text(c) for c in table.get_column(column.key)]
        widest = max([cell_len(label), *(cell_len(c) for c in cells)])
        cap = limit.get(str(column.key.value), widest)
        assert width >= min(widest, cap), (step, label, width, widest)
        assert lines[0][start:end].strip() == label.strip(), (step, "header", label, lines[0])
        for row, want in enumerate(cells):
            got = lines[1 + row][start:end].strip()
            if cell_len(want) <= width:
                assert got == want.strip(), (step, label, row, got, want, lines[1 + row])
            else:
                assert got.endswith("…") and want.startswith(got[:-1]), (step, label, got, want)


async def type_filter(pilot: Pilot, text: str) -> None:
    await pilot.press("slash")
    field = pilot.app.screen.query_one("#filter", Input)
    field.value = ""
    await pilot.press(*text) if text else None
    await pilot.press("enter")


async def clear_filter(pilot: Pilot) -> None:
    await pilot.press("slash", "escape")


async def edit_tags(pilot: Pilot, tags: str) -> None:
    table = pilot.app.screen.query_one("#versions", DataTable)
    if not table.row_count:
        return
    await pilot.press("e")
    await pilot.pause()
    if not isinstance(pilot.app.screen, RegistryScreen):
        pilot.app.screen.query_one("#reason", Input).value = tags
        await pilot.press("enter")


STEPS = {
    "filter model": lambda p: type_filter(p, f"model:{LONG[:5]}"),
    "filter text": lambda p: type_filter(p, "v1"),
    "filter none": lambda p: type_filter(p, "nothing-matches-this"),
    "filter status": lambda p: type_filter(p, "status:validation"),
    "clear filter": clear_filter,
    "sort": lambda p: p.press("s"),
    "reverse": lambda p: p.press("S"),
    "tags long": lambda p: edit_tags(p, "candidate, a-rather-long-tag-for-the-column, x"),
    "tags short": lambda p: edit_tags(p, "x"),
    "reload": lambda p: p.press("f5"),
    "mark": lambda p: p.press("space"),
    "down": lambda p: p.press("down"),
    "narrow": lambda p: p.resize_terminal(80, 30),
    "medium": lambda p: p.resize_terminal(120, 40),
    "wide": lambda p: p.resize_terminal(170, 40),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_columns_keep_their_width_through_edits(console_home: Path, seed: int) -> None:
    for i, version in enumerate(["v0.1.0", "v0.2.0", "v10.20.300"]):
        register_version(LONG, version, seed=i)
    rng = random.Random(seed)
    names = list(STEPS)
    app = make_app(cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#versions", DataTable)
        assert LONG + ":v10.20.300" in row_keys(table)
        assert_columns_fit(table, "mounted")
        done = []
        for _ in range(14):
            step = rng.choice(names)
            done.append(step)
            await STEPS[step](pilot)
            await settle(pilot)
            assert isinstance(app.screen, RegistryScreen)
            assert_columns_fit(table, " > ".join(done))
            await rebuild_drawn_before_idle(pilot, table)
            assert_columns_fit(table, " > ".join(done) + " > drawn before idle")


async def rebuild_drawn_before_idle(pilot: Pilot, table: DataTable) -> None:
    """The race, made certain: the screen repopulates and the terminal draws the table before
    the table's next idle (which is when a DataTable measures auto-width columns)."""
    pilot.app.screen.populate()
    for y in range(table.size.height):
        table.render_line(y)
    await settle(pilot)


@pytest.mark.parametrize(("key", "table_id"), [("2", "#experiments"), ("3", "#deployments")])
async def test_other_lists_keep_their_width_when_drawn_before_idle(
    console_home: Path, key: str, table_id: str
) -> None:
    """The experiments and deployments lists are filled the same way (``ListDetailScreen.fill``)."""
    app = make_app(cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot, key)
        table = app.screen.query_one(table_id, DataTable)
        assert table.row_count
        assert_columns_fit(table, "mounted")
        await rebuild_drawn_before_idle(pilot, table)
        assert_columns_fit(table, "drawn before idle")
