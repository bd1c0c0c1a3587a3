"""A scrollable, focusable, maximisable pane holding one Rich renderable (Enter drills down)."""

from __future__ import annotations

import io

from rich.console import RenderableType
from textual.containers import VerticalScroll
from textual.widgets import Static


class DetailPane(VerticalScroll):
    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    DetailPane {
        border: round $primary 40%;
        border-title-color: $text-primary;
        padding: 0 1;
    }
    DetailPane:focus {
        border: round $primary;
    }
    """

    def __init__(self, title: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = title
        self._body = Static("", classes="detail-body")
        self.renderable: RenderableType = ""

    def compose(self):
        yield self._body

    def show(self, renderable: RenderableType, title: str | None = None) -> None:
        if title is not None:
            self.border_title = title
        self.renderable = renderable
        self._body.update(renderable)

    def plain_text(self, width: int = 120) -> str:
        """What the pane shows, as plain text (for tests and copying)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(self.renderable)
        return console.export_text()
