"""Conventional ``--help``, applied once to the whole command tree when the root group parses:

- metavars: flags show none (Typer would print ``--json <bool>``), options show their value's
  name in capitals (``--url URL``, ``--limit LIMIT``), arguments their name alone (``REF``, not
  Typer's ``{REF}`` and ``REF <str>``), optional ones in brackets, as argparse and most Unix
  tools do;
- prose: a docstring's paragraphs are rewrapped (Typer's rich mode joins the lines of the first
  paragraph only), lines that start a list item or are indented keep their break;
- width: help written to a pipe or a file is rendered ``PIPE_HELP_WIDTH`` wide (or ``COLUMNS``)
  rather than cut at Rich's 80 columns.

Duck-typed on purpose: Typer ships its own copy of click, so ``isinstance`` checks against the
``click`` package would miss its classes."""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any

PIPE_HELP_WIDTH = 100
# A line that starts a list item or an indented block keeps its line break when rewrapping.
_KEEP_BREAK = re.compile(r"^(\s+|[-*•] |\d+[.)] |\x08)")


def conventional_metavars(command: Any) -> None:
    ctx = command.context_class(command, info_name=command.name)
    help_option = command.get_help_option(ctx)  # cached on the command, so this sticks
    params = [*command.params, *([help_option] if help_option is not None else [])]
    if command.help and not getattr(command, "_help_rewrapped", False):
        command.help = rewrap(command.help)
        command._help_rewrapped = True
        _widen_help_for_pipes(command)
    for param in params:
        if getattr(param, "param_type_name", "") == "argument":
            _conventional_argument(param)
        elif _is_flag(param):
            param.metavar = ""
        elif param.metavar is None and not _is_choice(param):
            param.metavar = (param.name or "value").upper()
    for sub in getattr(command, "commands", {}).values():
        conventional_metavars(sub)


def _is_choice(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return bool(descriptor.is_choice)
    return type(getattr(param, "type", None)).__name__ == "Choice"


def _is_flag(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    takes_bool = descriptor is not None and descriptor.annotation is bool
    return bool(getattr(param, "is_flag", False) or getattr(param, "count", False) or takes_bool)


def rewrap(text: str) -> str:
    """Join the lines of each paragraph, so the terminal (or ``PIPE_HELP_WIDTH``) wraps them."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.split("\n")
        joined = lines[0]
        for line in lines[1:]:
            joined += ("\n" if _KEEP_BREAK.match(line) else " ") + line
        paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def _conventional_argument(param: Any) -> None:
    """``REF`` in the usage line and the Arguments panel, ``[REF]`` when optional, no type."""
    if param.metavar is None:
        param.metavar = (param.name or "value").upper()
    piece = param.metavar if param.required else f"[{param.metavar}]"
    piece += "..." if param.nargs != 1 else ""
    # Instance attributes shadow Typer's methods: its usage wraps a required one in braces, and
    # its type column repeats a name as ``<str>``.
    param.get_usage_pieces = lambda ctx: [piece]
    param.display_type_rich = lambda ctx: None


def _widen_help_for_pipes(command: Any) -> None:
    render = command.format_help

    def format_help(ctx: Any, formatter: Any) -> None:
        piped = not sys.stdout.isatty()
        if piped and not (os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH")):
            from typer import rich_utils  # imported by Typer for this help already

            rich_utils.MAX_WIDTH = PIPE_HELP_WIDTH
        render(ctx, formatter)

    command.format_help = format_help
