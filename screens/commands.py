"""Command palette (ctrl+p, or ``:`` like k9s): the current screen's actions, its own
context commands (open a given experiment, filter by status...) and jumps between screens.

Only what makes sense now is offered: mutating actions disappear in read-only mode because the
screen's ``check_action`` says so, exactly as in the footer. The console's own commands come
first; Textual's (theme, keys panel, screenshot, quit) follow them, from this same provider, so
the order never depends on which provider answers first.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from screens.widgets.nav import SCREENS

Command = tuple[str, Callable[[], Any], str]


def screen_commands(screen: Any, app: Any) -> list[Command]:
    commands: list[Command] = []
    title = getattr(screen, "TITLE_TEXT", "") or ""
    seen: set[str] = set()
    # The screen's own bindings (not Textual's focus and copy keys), minus what is unavailable.
    own = [*getattr(screen, "BINDINGS", []), *getattr(type(screen), "SHARED_BINDINGS", [])]
    for binding in own:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        if binding.action in seen or screen.check_action(binding.action, ()) is not True:
            continue
        seen.add(binding.action)
        label = f"{title}: {binding.description}" if title else binding.description
        keys = app.get_key_display(binding)
        commands.append((label, partial(screen.run_action, binding.action), f"key {keys}"))
    extra = getattr(screen, "palette_commands", None)
    if callable(extra):
        commands.extend(extra())
    current = getattr(app, "current_mode", "")
    for mode, key, label in SCREENS:
        if mode != current:
            commands.append(
                (f"Go to {label}", partial(app.switch_mode, mode), f"key {key} · :{mode}")
            )
    read_only = getattr(app, "read_only", False)
    commands.append(
        (
            "Allow changes (leave read-only)" if read_only else "Read-only mode",
            app.action_toggle_read_only,
            "key ctrl+r",
        )
    )
    commands.append(("Help: every key", app.action_help, "key ?"))
    return commands


def textual_commands(screen: Any, app: Any, discover: bool = False) -> list[Command]:
    """Textual's own commands, after ours (``discover``: only those shown before typing)."""
    return [
        (c.title, c.callback, f"Textual · {c.help}")
        for c in app.get_system_commands(screen)
        if c.discover or not discover
    ]


class ScreenActionsProvider(Provider):
    async def discover(self) -> Hits:
        own = screen_commands(self.screen, self.app)
        for label, callback, help_text in own + textual_commands(self.screen, self.app, True):
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        own = screen_commands(self.screen, self.app)
        for label, callback, help_text in own + textual_commands(self.screen, self.app):
            # ":deployments" jumps like k9s: match the help text too.
            score = max(matcher.match(label), matcher.match(help_text) * 0.9)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, text=label, help=help_text)
