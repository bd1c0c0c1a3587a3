"""The main list of a screen: a DataTable that tells its screen when its width changes, so the
screen can pick the columns that fit (the breakpoint layout changes the width, not the screen)."""

from __future__ import annotations

from textual import events
from textual.widgets import DataTable


class ListTable(DataTable):
    def on_resize(self, _event: events.Resize) -> None:
        refit = getattr(self.screen, "_refit", None)
        if refit is not None:
            self.call_after_refresh(refit)
