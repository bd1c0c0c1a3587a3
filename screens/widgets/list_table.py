"""The main list of a screen: a DataTable that tells its screen when its width changes, so the
screen can pick the columns that fit (the breakpoint layout changes the width, not the screen),
and that is filled in one step with widths fixed from what it shows (``set_rows``).

Why fixed widths: a DataTable measures auto-width columns later, when it is idle, and keeps the
cells it rendered before that in caches keyed without the width. A screen refresh that came
between the rebuild and the measuring left every column as narrow as its header until the next
rebuild (issue 14: "registry columns collapse to a few characters after filter, sort and tag
edits, until F5"). Columns whose width is known when they are added never change width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.render import measure
from textual.widgets import DataTable


@dataclass(frozen=True)
class ColumnSpec:
    """A column of ``set_rows``: ``width`` fixes it; otherwise it is as wide as its label and
    its widest cell, at most ``max_width``."""

    key: str
    label: str | Text
    width: int | None = None
    max_width: int | None = None


class ListTable(DataTable):
    def on_resize(self, _event: events.Resize) -> None:
        refit = getattr(self.screen, "_refit", None)
        if refit is not None:
            self.call_after_refresh(refit)

    def set_rows(
        self, columns: Sequence[ColumnSpec], rows: Sequence[tuple[str, Sequence[object]]]
    ) -> None:
        """Replace columns and rows (``rows``: key and cells, in the order of ``columns``)."""
        self.clear(columns=True)
        for i, spec in enumerate(columns):
            width = spec.width
            if width is None:
                width = max(
                    [self._cell_width(spec.label), *(self._cell_width(c[i]) for _k, c in rows)]
                )
                if spec.max_width is not None:
                    width = min(width, spec.max_width)
            self.add_column(spec.label, key=spec.key, width=width)
        for key, cells in rows:
            self.add_row(*cells, key=key)

    def _cell_width(self, cell: object) -> int:
        """What the DataTable would measure for an auto-width column: strings are markup."""
        if isinstance(cell, str):
            cell = Text.from_markup(cell, end="")
        elif isinstance(cell, float):
            cell = Text(f"{cell:.2f}")
        elif not hasattr(cell, "__rich_console__") and not hasattr(cell, "__rich__"):
            cell = Text(str(cell))
        return measure(self.app.console, cell, 1)  # type: ignore[arg-type]
