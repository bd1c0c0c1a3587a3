"""What the console's pilot tests share: waiting for the workers, reading a table's row keys."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable


async def settle(pilot: Pilot) -> None:
    """Let pending messages run, then every worker finish, then their messages run."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_screen(pilot: Pilot, key: str) -> None:
    """Settle the first screen, switch with its number key, settle the new one."""
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)


def row_keys(table: DataTable) -> list[str]:
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
