"""Events screen (4): alerts, automated actions and the audit log in one stream, newest at the
bottom, following new entries; filterable; Enter shows an entry's full data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.binding import Binding

from screens import fmt
from screens.list_detail import ListDetailScreen
from screens.messages import Feed, FeedLoaded
from screens.widgets.detail_pane import DetailPane
from screens.widgets.list_table import ColumnSpec

KEEP = 2000
# Kind and source: (floor, cap) of their width; between them, as wide as their widest value.
ID_COLUMNS = {"kind": (18, 32), "source": (16, 28)}
# The message is what is read: the ids give way before it goes under this.
MESSAGE_MIN = 40
FIRST_LOAD = 300


@dataclass(frozen=True)
class Entry:
    """An event or an audit entry, flattened for one table."""

    key: str
    at: datetime
    type: str  # event | audit
    severity: str
    kind: str
    source: str
    message: str
    data: dict[str, Any]


def from_event(e: Any) -> Entry:
    return Entry(f"e{e.id}", e.at, "event", e.severity, e.kind, e.source, e.message, e.data)


def _change(before: dict | None, after: dict | None) -> str:
    before, after = before or {}, after or {}
    keys = [k for k in after if k in before and before[k] != after[k]]
    simple = [k for k in keys if not isinstance(after[k], dict | list)]
    return "; ".join(f"{k}: {before[k]} → {after[k]}" for k in simple[:3])


def from_audit(a: Any) -> Entry:
    change = _change(a.before, a.after)
    message = " · ".join(p for p in (a.actor, change, a.detail) if p)
    data = {"actor": a.actor, "before": a.before, "after": a.after, "detail": a.detail}
    return Entry(f"a{a.id}", a.at, "audit", "", a.action, a.entity_id, message, data)


class EventsScreen(ListDetailScreen):
    MODE = "events"
    TITLE_TEXT = "Events"
    TABLE_ID = "feed"
    TABLE_TITLE = "Events and audit"
    SPLIT_CLASSES = "events"
    DETAIL_TITLE = "Entry"
    POLLS = (("events-feed", 2.0, "_load"),)
    FILTER_HINT = "/ filter: text, type:audit severity:warning kind:deployment source:ID"
    FILTER_KEYS: ClassVar[tuple[str, ...]] = ("type", "severity", "kind", "source")
    BINDINGS = [
        Binding("f", "follow", "Follow", id="events.follow"),
        Binding("e", "cycle_type", "Events/audit", id="events.type"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[Entry] = []
        self.type_filter: str | None = None  # None: both; "event"; "audit"
        self.follow = True
        self.after_event: int | None = None
        self.after_audit: int | None = None
        self._shown_columns: list[str] = []
        self._id_widths: dict[str, int] = {}

    def setup_table(self) -> None:
        self._columns()

    def action_reload(self) -> None:
        self.entries, self.after_event, self.after_audit = [], None, None
        self.populate()
        self._load()

    def _load(self) -> None:
        self.load_feed(self.after_event, self.after_audit)

    # ---- worker ----------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="events-feed")
    def load_feed(self, after_event: int | None, after_audit: int | None) -> None:
        backend = self.backend
        if after_event is None and after_audit is None:
            events = list(reversed(backend.events(limit=FIRST_LOAD)))
            audit = list(reversed(backend.audit(limit=FIRST_LOAD)))
        else:
            events = backend.events(after_id=after_event or 0, limit=500)
            audit = backend.audit(after_id=after_audit or 0, limit=500)
        self.post_if_current(FeedLoaded(Feed(events, audit)))

    # ---- rendering -------------------------------------------------------------------------------

    def _columns(self) -> None:
        """Fixed widths, so nothing scrolls sideways: kind and source as wide as what they show
        (up to a cap), the message what is left but never under ``MESSAGE_MIN``; when the
        terminal is too narrow for both, kind and source give way, the wider first."""
        table = self.table
        width = table.size.width or self.size.width
        self.fitted(width)
        cols = ["time", "type", "severity", "kind", "source", "message"]
        if width < 100:
            cols = ["time", "kind", "message"]
        widths = {"time": 14, "type": 5, "severity": 8}
        for col, (floor, cap) in ID_COLUMNS.items():
            if col in cols:
                content = max([len(col), *(len(getattr(e, col)) for e in self.entries)])
                widths[col] = max(min(content, cap), min(floor, content))
        # 2 of border, 2 of scrollbar, 2 of padding per column.
        room = width - 4 - 2 * len(cols) - sum(widths.values())
        while room < MESSAGE_MIN:
            shrinkable = [
                c for c, (floor, _cap) in ID_COLUMNS.items() if c in cols and widths[c] > floor
            ]
            if not shrinkable:
                break
            widest = max(shrinkable, key=lambda c: widths[c])
            widths[widest] -= 1
            room += 1
        widths["message"] = max(20, room)
        specs = [ColumnSpec(col, col, width=widths[col]) for col in cols]
        table.set_rows(specs, [])
        self._shown_columns = cols
        self._id_widths = {c: widths[c] for c in ID_COLUMNS if c in cols}

    def _outgrown(self, entries: list[Entry]) -> bool:
        """Whether a new entry's kind or source is wider than its column could still be."""
        for col, width in self._id_widths.items():
            cap = ID_COLUMNS[col][1]
            if any(width < min(len(getattr(e, col)), cap) for e in entries):
                return True
        return False

    @on(FeedLoaded)
    def _feed(self, message: FeedLoaded) -> None:
        events, audit = message.payload.events, message.payload.audit
        if events:
            self.after_event = max(e.id for e in events)
        elif self.after_event is None:
            self.after_event = 0
        if audit:
            self.after_audit = max(a.id for a in audit)
        elif self.after_audit is None:
            self.after_audit = 0
        new = sorted(
            [from_event(e) for e in events] + [from_audit(a) for a in audit], key=lambda x: x.at
        )
        if not new:
            return
        self.entries.extend(new)
        if len(self.entries) > KEEP or self._outgrown(new):
            self.entries = self.entries[-KEEP:]
            self.populate()
        else:
            self._append(new)

    def _append(self, entries: list[Entry]) -> None:
        table = self.table
        for entry in entries:
            if self._matches(entry):
                table.add_row(*self._cells(entry), key=entry.key)
        self._after_rows()

    def populate(self) -> None:
        self._columns()
        self._append(self.entries)

    def _after_rows(self) -> None:
        table = self.table
        table.border_title = f"Events and audit {table.row_count}/{len(self.entries)}"
        parts = ["following" if self.follow else "paused (f follows)"]
        if self.type_filter:
            parts.append(f"{self.type_filter} only")
        if self.filter:
            parts.append(self.filter.describe())
        table.border_subtitle = " · ".join(parts)
        if self.follow and table.row_count:
            table.move_cursor(row=table.row_count - 1, animate=False)
            # Textual moves the scrollbar's thumb only if the bar was shown when the list
            # scrolled; on the first load it appears later, so place the thumb after layout.
            table.call_after_refresh(self._sync_scrollbar)

    def _sync_scrollbar(self) -> None:
        self.table.vertical_scrollbar.position = self.table.scroll_y

    def _cells(self, e: Entry) -> list[Any]:
        tones = self.tones
        assert tones is not None
        values = {
            "time": Text(fmt.when(e.at, seconds=True)[5:]),
            "type": Text(e.type, style=tones.style("accent" if e.type == "audit" else "primary")),
            "severity": tones.status(e.severity, upper=False) if e.severity else Text("—"),
            "kind": Text(e.kind, overflow="ellipsis", no_wrap=True),
            "source": Text(e.source, overflow="ellipsis", no_wrap=True),
            "message": Text(e.message, overflow="ellipsis", no_wrap=True),
        }
        return [values[c] for c in self._shown_columns]

    def _matches(self, e: Entry) -> bool:
        if self.type_filter and e.type != self.type_filter:
            return False
        if not self.filter:
            return True
        values = {"type": e.type, "severity": e.severity, "kind": e.kind, "source": e.source}
        return self.filter.matches(values, f"{e.kind} {e.source} {e.message} {e.severity}")

    def column_tier(self, width: int) -> object:
        return width  # the message column takes whatever is left

    # ---- events ----------------------------------------------------------------------------------

    def highlight(self, key: str | None) -> None:
        self.selected = key
        entry = next((e for e in reversed(self.entries) if e.key == self.selected), None)
        if entry is not None:
            title = f"{entry.type} {entry.key[1:]}"
            self.query_one(DetailPane).show(self._detail(entry), title=title)

    def _detail(self, e: Entry) -> Group:
        assert self.tones is not None
        head = Table.grid(padding=(0, 2))
        head.add_column(style="bold", no_wrap=True)
        head.add_column(overflow="fold")
        head.add_row("when", fmt.when(e.at, seconds=True))
        head.add_row("type", e.type + (f" · {e.severity}" if e.severity else ""))
        head.add_row("kind", e.kind)
        head.add_row("source", e.source or "—")
        head.add_row("message", e.message)
        body = json.dumps(e.data, indent=2, sort_keys=True, default=str)
        theme = "ansi_dark" if self.app.current_theme.dark else "ansi_light"
        return Group(head, Text(""), Syntax(body, "json", theme=theme, word_wrap=True))

    # ---- actions ---------------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.follow = not self.follow
        self._after_rows()

    def action_cycle_type(self) -> None:
        order: list[str | None] = [None, "event", "audit"]
        self.type_filter = order[(order.index(self.type_filter) + 1) % 3]
        self.populate()

    def palette_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        return [
            ("Events: only warnings and critical alerts",
             partial(self._set_filter, "severity:warning severity:critical"), "filter"),
            ("Events: only the audit log", partial(self._set_filter, "type:audit"), "filter"),
            ("Events: only deployment events", partial(self._set_filter, "kind:deployment"),
             "filter"),
            ("Events: only experiment events", partial(self._set_filter, "kind:experiment"),
             "filter"),
            ("Events: clear the filter", partial(self._set_filter, ""), "filter"),
        ]  # fmt: skip
