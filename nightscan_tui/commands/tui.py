"""``nightscan tui``: the operations console (also what ``nightscan`` alone opens)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nightscan_tui.options import token_option


def tui(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="State folder to open (default: the global --home)."),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Hide and refuse every change (ctrl+r toggles).")
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Attach to a running `nightscan serve` (e.g. http://127.0.0.1:8080) "
            "instead of opening a home.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        token_option(
            "API token for --server (from `nightscan token create`); a viewer token "
            "opens the console read-only."
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Also serve the home from this process: the inference endpoint, the "
            "experiment monitor and the health and canary loops, stopped (drained) on quit.",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, metavar="PORT", help="Port for --serve (0: any free one)."
        ),
    ] = 8000,
) -> None:
    """Open the console: registry, experiments, live deployments, events."""
    from core.errors import ValidationError
    from nightscan_tui.app import run_console

    if server and home:
        raise ValidationError("--home and --server exclude each other: open a home or attach")
    if server and serve:
        raise ValidationError("--serve serves a home; it cannot be combined with --server")
    services = None
    if serve:
        from core.console_services import ServingServices

        services = ServingServices(port=port)
    run_console(home=home, read_only=read_only, services=services, server=server, token=token)
