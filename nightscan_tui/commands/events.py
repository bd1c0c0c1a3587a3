"""``nightscan events``: automated actions, alerts and milestones."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from nightscan_tui.console_io import local_time, out, print_json


def _print(events) -> None:
    from core.formatting import cli_style

    for e in events:
        style = cli_style(e.severity) if e.severity != "info" else ""
        sev = f"[{style}]{e.severity:<8}[/]" if style else f"{e.severity:<8}"
        out.print(
            f"{local_time(e.at)}  {sev} {e.kind:<28} {e.message}", highlight=False, soft_wrap=True
        )


def _recent_events(**query):
    from core.events import recent_events

    return recent_events(**query)


def events(
    kind: Annotated[str | None, typer.Option("--kind", help="Prefix, e.g. deployment.")] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="A deployment or experiment.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Newest events to show.")
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The event stream: alerts firing and resolving, rollbacks, canary steps, auto-stops."""
    import json

    from core.direct_reads import direct_reader

    with direct_reader(enabled=not follow) as reader:  # no SQLAlchemy when the database allows
        read = reader.recent_events if reader else _recent_events
        batch = list(reversed(read(kind=kind, source=source, limit=limit)))

    def emit(items) -> None:
        if as_json:
            for e in items:
                print(json.dumps(e.to_dict(), default=str), flush=True)
        else:
            _print(items)

    if as_json and not follow:
        print_json([e.to_dict() for e in batch])
        return
    if not batch and not follow:
        out.print("no events match" if (kind or source) else "no events yet")
    emit(batch)
    last = batch[-1].id if batch else 0
    while follow:
        time.sleep(1.0)
        new = _recent_events(kind=kind, source=source, after_id=last, limit=500)
        if new:
            emit(new)
            last = new[-1].id
