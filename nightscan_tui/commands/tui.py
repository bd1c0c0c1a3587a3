"""``nightscan tui``: the operations console (also what ``nightscan`` alone opens)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tui(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="State folder to open (default: the global --home)."),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Hide and refuse every change (ctrl+r toggles).")
    ] = False,
) -> None:
    """Open the console: registry, experiments, live deployments, events."""
    from nightscan_tui.app import run_console

    run_console(home=home, read_only=read_only)
