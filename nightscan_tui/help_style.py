"""Conventional metavars in ``--help``: flags show none (Typer would print ``--json <bool>``),
options show their value's name in capitals (``--url URL``, ``--limit LIMIT``), as argparse and
most Unix tools do. Applied once to the whole command tree when the root group is built.

Duck-typed on purpose: Typer ships its own copy of click, so ``isinstance`` checks against the
``click`` package would miss its classes."""

from __future__ import annotations

from typing import Any


def conventional_metavars(command: Any) -> None:
    ctx = command.context_class(command, info_name=command.name)
    help_option = command.get_help_option(ctx)  # cached on the command, so this sticks
    params = [*command.params, *([help_option] if help_option is not None else [])]
    for param in params:
        if _is_flag(param):
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
