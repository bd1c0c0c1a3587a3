"""``nightscan audit``: the append-only audit log."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from nightscan_tui.console_io import out, print_json


def _audit_log():
    from core import get_context

    return get_context().audit


def audit(
    entity: Annotated[
        str | None, typer.Option("--entity", help="e.g. wildlife_detector:v2.1.0")
    ] = None,
    action: Annotated[str | None, typer.Option("--action", help="Prefix, e.g. model.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Newest entries to show.")
    ] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new entries.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Who changed what, when, with the state before and after (newest last)."""
    from core.direct_reads import direct_reader

    with direct_reader(enabled=not follow) as reader:  # no SQLAlchemy when the database allows
        log = reader or _audit_log()
        entries = list(reversed(log.entries(entity_id=entity, action=action, limit=limit)))
    if as_json and not follow:
        print_json([e.to_dict() for e in entries])
        return
    from nightscan_tui.render import audit_table

    out.print(audit_table(entries))
    last_id = entries[-1].id if entries else 0
    while follow:
        time.sleep(1.0)
        new = log.entries(entity_id=entity, action=action, after_id=last_id, limit=500)
        if new:
            out.print(audit_table(new))
            last_id = new[-1].id
