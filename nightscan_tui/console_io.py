"""Output helpers shared by the commands: one Rich console for stdout, one for errors."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, ConsoleDimensions

# Piped output is for scripts: a row is never wrapped or cut to fit an imagined 80 columns.
PIPE_WIDTH = 10_000


class _StdoutConsole(Console):
    """Rich's console, except that a stdout that is not a terminal (and no COLUMNS) is as wide as
    the longest row; Rich would otherwise squeeze tables to 80 columns and cut ids."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or self._width is not None or self._environ.get("COLUMNS"):
            return size
        return ConsoleDimensions(PIPE_WIDTH, size.height)


out = _StdoutConsole(soft_wrap=True)  # a message line is never broken; tables still fit
_err = Console(stderr=True)


def err(message: str) -> None:
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    # Plain print: Rich would wrap long strings. Indented for people, compact (C encoder) for pipes.
    indent = 2 if sys.stdout.isatty() else None
    print(json.dumps(data, indent=indent, default=str))


def human_size(n: int) -> str:
    from core.formatting import size  # here, not at the top: `--help` must not import core

    return size(n, empty="0 B")


def local_time(dt) -> str:
    """Storage is UTC; screens show local time."""
    from core.formatting import local_time as local

    return local(dt)
