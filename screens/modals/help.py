"""``?``: every binding active on the screen below, grouped, with the filter syntax."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpModal(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close"),
    ]

    def __init__(self, title: str, sections: list[tuple[str, list[tuple[str, str]]]], hint: str):
        super().__init__(classes="dialog")
        self.title_text = title
        self.sections = sections
        self.hint = hint

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, min_width=10)
        table.add_column()
        for name, rows in self.sections:
            if not rows:
                continue
            table.add_row(Text(name, style="bold underline"), "")
            for key, description in rows:
                table.add_row(key, description)
            table.add_row("", "")
        if self.hint:
            table.add_row(Text("Filter", style="bold underline"), "")
            table.add_row("/", Text(self.hint))
        with Vertical(id="dialog", classes="help"):
            yield Label(self.title_text, id="dialog-title")
            with VerticalScroll():
                yield Static(table)
            yield Label("esc closes · ctrl+p searches every action", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
