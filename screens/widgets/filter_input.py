"""The ``/`` filter: free text plus ``key:value`` tokens, parsed the same way on every screen."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.binding import Binding
from textual.widgets import Input


@dataclass(frozen=True)
class Filter:
    """``status:deployed owl`` -> fields {"status": ["deployed"]}, words ["owl"]."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    keys: tuple[str, ...] = ()  # the keys this screen knows
    unknown: tuple[str, ...] = ()  # "key:" prefixes that are none of them (matched as text)

    @classmethod
    def parse(cls, text: str, keys: tuple[str, ...]) -> Filter:
        fields: dict[str, list[str]] = {}
        words: list[str] = []
        unknown: list[str] = []
        for token in text.lower().split():
            key, sep, value = token.partition(":")
            if sep and key in keys and value:
                fields.setdefault(key, []).append(value)
            else:
                words.append(token)
                if sep and key and keys and key not in keys and key not in unknown:
                    unknown.append(key)
        return cls(fields, words, keys, tuple(unknown))

    def describe(self) -> str:
        """What the list's subtitle says: "filtered", and any key it does not know, named."""
        if not self:
            return ""
        if not self.unknown:
            return "filtered"
        named = ", ".join(f"{k}:" for k in self.unknown)
        return f"filtered · unknown key {named} (keys: {', '.join(self.keys)}); matched as text"

    def __bool__(self) -> bool:
        return bool(self.fields or self.words)

    def matches(self, values: dict[str, str], haystack: str) -> bool:
        """Each field token is a substring of that field (tokens of one key: any of them);
        each free word is a substring of the whole row."""
        for key, wanted in self.fields.items():
            value = values.get(key, "").lower()
            if not any(w in value for w in wanted):
                return False
        hay = haystack.lower()
        return all(w in hay for w in self.words)


class FilterInput(Input):
    """An Input that honours the app's cursor-blink setting (snapshot tests turn it off);
    Enter hands the focus back to the screen's list, keeping the filter; Esc clears it first."""

    BINDINGS = [
        Binding("escape", "clear", "Clear the filter", show=False, id="filter.clear"),
    ]

    DEFAULT_CSS = """
    FilterInput {
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    FilterInput:focus {
        border: none;
        background: $boost;
    }
    """

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "cursor_blink", True)

    def action_clear(self) -> None:
        self.value = ""  # Input.Changed: the screen shows every row again
        self.action_leave()

    def action_leave(self) -> None:
        target = getattr(self.screen, "main_widget", None)
        if target is not None:
            target.focus()


class FormInput(Input):
    """A form field that honours the app's cursor-blink setting."""

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "cursor_blink", True)
