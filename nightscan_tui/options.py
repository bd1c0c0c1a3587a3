"""Options several commands share, declared once."""

from __future__ import annotations

import typer


def token_option(help_text: str):
    """``--token`` (or ``$NIGHTSCAN_TOKEN``), never echoed as a default in --help."""
    return typer.Option("--token", envvar="NIGHTSCAN_TOKEN", help=help_text, show_default=False)
