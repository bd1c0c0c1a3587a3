"""The skeleton the list screens share: a ListTable beside a detail widget in ``#split``.

A subclass names its table (``TABLE_ID``, ``TABLE_TITLE``), its detail widget (``DETAIL_WIDGET``,
built by ``compose_detail``), its polls (``POLLS``: group, interval, method name) and how a
record keys its row (``ROW_KEY``); it keeps its workers, columns, cells and actions. Highlighting
a row selects it (``load_selection``), Enter drills into the detail, ``ActionDone`` notifies
and reloads (``after_action``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Container
from textual.widget import Widget
from textual.widgets import DataTable

from screens.base import NightScanScreen
from screens.messages import ActionDone
from screens.widgets.detail_pane import DetailPane
from screens.widgets.filter_input import Filter
from screens.widgets.list_table import ColumnSpec, ListTable


class ListDetailScreen(NightScanScreen):
    TITLE_TEXT: ClassVar[str] = ""
    TABLE_ID: ClassVar[str] = ""
    TABLE_TITLE: ClassVar[str] = ""
    SPLIT_CLASSES: ClassVar[str | None] = None
    DETAIL_WIDGET: ClassVar[type[Widget]] = DetailPane
    DETAIL_TITLE: ClassVar[str] = "Detail"
    POLLS: ClassVar[tuple[tuple[str, float, str], ...]] = ()
    ROW_KEY: ClassVar[str] = ""  # the attribute of a record in self.rows that keys its row
    FILTER_KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[Any, Any]] = []  # (record, extra) for screens that list rows
        self.filter = Filter()
        self.selected: str | None = None
        self._signature: tuple = ()

    # ---- layout ----------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Container(id="split", classes=self.SPLIT_CLASSES):
            table = ListTable(id=self.TABLE_ID, cursor_type="row", zebra_stripes=True)
            table.border_title = self.TABLE_TITLE
            yield table
            yield self.compose_detail()

    def compose_detail(self) -> Widget:
        return DetailPane(self.DETAIL_TITLE, id="detail")

    @property
    def table(self) -> ListTable:
        return self.query_one(f"#{self.TABLE_ID}", ListTable)

    @property
    def main_widget(self) -> DataTable:
        return self.table

    @property
    def detail_widget(self) -> Widget:
        return self.query_one(self.DETAIL_WIDGET)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.focus()
        self.setup_table()
        for group, interval, start in self.POLLS:
            self.poll(group, interval, getattr(self, start))

    def setup_table(self) -> None:
        """Before the polls start."""

    # ---- list ------------------------------------------------------------------------------------

    def repopulate(self, signature: tuple) -> None:
        """Rebuild the list only when what it shows changed (most polls change nothing)."""
        if signature != self._signature:
            self._signature = signature
            self.populate()

    def fill(self, columns: list[str], cells: Callable[[Any, Any, list[str]], list[Any]]) -> None:
        """Headers, then the rows of ``self.rows`` that match the filter, made by ``cells``."""
        keep = self.selected
        rows = [
            (getattr(info, self.ROW_KEY), cells(info, extra, columns))
            for info, extra in self.rows
            if self._matches(info)
        ]
        self.table.set_rows([ColumnSpec(col, col) for col in columns], rows)
        self.finish(len(rows), len(self.rows), keep)

    def finish(self, shown: int, total: int, keep: str | None) -> None:
        """The count in the title, "filtered" below; the cursor stays on ``keep``."""
        table = self.table
        table.border_title = f"{self.TABLE_TITLE} {shown}/{total}"
        table.border_subtitle = self.filter.describe()
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep), animate=False)
        if shown == 0 and total > 0:
            self.show_filtered_out()

    def show_filtered_out(self) -> None:
        """The filter hides every row: the detail must not keep showing the last selection."""
        self.selected = None  # the next highlighted row loads again once the filter lets it
        pane = self.detail_widget
        if isinstance(pane, DetailPane):
            pane.show(self.filtered_out_text(), title=self.DETAIL_TITLE)

    def filtered_out_text(self) -> Text:
        return Text("Nothing matches the filter.\n\nEsc clears it; / edits it.")

    def _matches(self, info: Any) -> bool:
        return True

    def apply_filter(self, text: str) -> None:
        self.filter = Filter.parse(text, self.FILTER_KEYS)
        self.populate()

    def _set_filter(self, text: str) -> None:
        self.query_one("#filter").value = text  # type: ignore[attr-defined]
        self.apply_filter(text)

    def rerender(self) -> None:
        self.populate()

    # ---- selection -------------------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == self.TABLE_ID:
            self.highlight(event.row_key.value)

    def highlight(self, key: str | None) -> None:
        if key is None or key == self.selected and self.selection_loaded():
            return
        self.selected = key
        self.load_selection(key)
        self.refresh_bindings()

    def selection_loaded(self) -> bool:
        """Whether the detail already shows the selection (highlighting it again loads nothing)."""
        return True

    def load_selection(self, key: str) -> None:
        """Start loading the detail of a newly highlighted row."""

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == self.TABLE_ID:
            self.drill(self.detail_widget)

    def _open_id(self, key: str) -> None:
        table = self.table
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key))
        self.drill(self.detail_widget)

    def _selected_info(self) -> Any | None:
        for info, _extra in self.rows:
            if getattr(info, self.ROW_KEY) == self.selected:
                return info
        return None

    # ---- writes ----------------------------------------------------------------------------------

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.notify(message.text, title=self.TITLE_TEXT)
        if message.select:
            self.selected = message.select
        self.action_reload()
        self.after_action()

    def after_action(self) -> None:
        """After an ActionDone reloaded the list."""
