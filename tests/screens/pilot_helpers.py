"""What the console's pilot tests share: waiting for the workers, reading a table's row keys."""

from __future__ import annotations

from contextlib import suppress

from textual.pilot import Pilot
from textual.widgets import DataTable
from textual.worker import WorkerCancelled, WorkerFailed


async def settle(pilot: Pilot) -> None:
    """Let pending messages run, then every worker finish, then their messages run.

    A worker that fails is waited for too, not raised here: the console's workers run with
    ``exit_on_error=False`` and turn errors into notifications, which the tests assert. (Raising
    depended on timing: a worker that failed before the wait had left the manager already.)"""
    await pilot.pause()
    for worker in list(pilot.app.workers):
        with suppress(WorkerFailed, WorkerCancelled):
            await worker.wait()
    await pilot.pause()


async def open_screen(pilot: Pilot, key: str) -> None:
    """Settle the first screen, switch with its number key, settle the new one."""
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)


def row_keys(table: DataTable) -> list[str]:
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
