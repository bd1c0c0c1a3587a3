"""Registry screen (1): every version, filter, sort, detail, compare two, lifecycle moves."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widgets import DataTable

from core import ModelStatus
from core.lifecycle import allowed_transitions
from core.semver import version_key
from screens import fmt
from screens.list_detail import ListDetailScreen
from screens.messages import (
    ActionDone,
    ComparisonLoaded,
    VersionDetail,
    VersionDetailLoaded,
    VersionsLoaded,
)
from screens.modals.confirm import ConfirmModal
from screens.modals.transition import TransitionModal
from screens.panels.model_detail import comparison, model_detail
from screens.widgets.detail_pane import DetailPane
from screens.widgets.list_table import ColumnSpec

STATUS_ORDER = {s.value: i for i, s in enumerate(ModelStatus)}
NO_VALUE = float("-inf")


def _f1(meta: Any) -> float | None:
    return meta.metrics.get("f1_score", meta.metrics.get("f1"))


# key, label, sort key; the narrow set keeps 80 columns readable.
COLUMNS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("model", "model", lambda m: (m.model_id, version_key(m.version))),
    ("version", "version", lambda m: (version_key(m.version), m.model_id)),
    ("status", "status", lambda m: STATUS_ORDER.get(m.status.value, 99)),
    ("architecture", "arch", lambda m: m.architecture),
    ("accuracy", "accuracy", lambda m: m.metrics.get("accuracy", NO_VALUE)),
    ("f1", "f1", lambda m: _f1(m) if _f1(m) is not None else NO_VALUE),
    ("size", "size", lambda m: m.file_size_bytes),
    ("sha256", "sha256", lambda m: m.checksum),
    ("tags", "tags", lambda m: ",".join(m.tags)),
    ("created", "created", lambda m: m.created_at),
]
NARROW = ("model", "version", "status", "accuracy", "tags")
MEDIUM = tuple(k for k, _l, _g in COLUMNS if k != "architecture")


def visible_columns(width: int) -> tuple[str, ...]:
    """Which columns fit: 80 columns get the essentials, 120 all but the architecture."""
    if width < 100:
        return NARROW
    if width < 150:
        return MEDIUM
    return tuple(k for k, _l, _g in COLUMNS)


SORT_KEYS = {key: getter for key, _label, getter in COLUMNS}


class RegistryScreen(ListDetailScreen):
    MODE = "registry"
    TITLE_TEXT = "Registry"
    TABLE_ID = "versions"
    TABLE_TITLE = "Versions"
    POLLS = (("registry-list", 10.0, "load_versions"),)
    MUTATING = frozenset({"transition", "tags", "delete"})
    CHANGES: ClassVar[dict[str, str]] = {
        "transition": "registry.update_status",
        "tags": "registry.set_tags",
        "delete": "registry.delete_model",
    }
    FILTER_HINT = "/ filter: text, model:ID status:deployed tag:prod arch:small_cnn"
    BINDINGS = [
        Binding("space", "mark", "Mark", id="registry.mark"),
        Binding("c", "compare", "Compare", id="registry.compare"),
        Binding("t", "transition", "Status", id="registry.transition"),
        Binding("s", "sort", "Sort", id="registry.sort"),
        Binding("e", "tags", "Edit tags", show=False, id="registry.tags"),
        Binding("v", "verify", "Verify checksum", show=False, id="registry.verify"),
        Binding("delete", "delete", "Delete version", show=False, id="registry.delete"),
        Binding("S", "reverse", "Reverse sort", show=False, id="registry.reverse"),
        Binding(
            "escape",
            "clear_marks",
            "Clear marks, then the filter",
            show=False,
            id="registry.clear_marks",
        ),
    ]
    FILTER_KEYS: ClassVar[tuple[str, ...]] = ("model", "status", "tag", "arch")
    DISABLED_HINTS: ClassVar[dict[str, str]] = {
        "compare": "mark two versions with space first",
        "transition": "select a version first",
        "tags": "select a version first",
        "verify": "select a version first",
        "delete": "select a version that is not DEPLOYED",
        "clear_marks": "nothing is marked or filtered",
    }

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[Any] = []
        self.shown: list[Any] = []
        self.sort_key = "model"
        self.sort_reverse = False
        self.marked: list[str] = []
        self.detail: tuple[Any, list[Any]] | None = None
        self.compared: dict[str, Any] | None = None
        self._columns: tuple[str, ...] = ()

    def action_reload(self) -> None:
        self._signature = ()
        self.load_versions()

    # ---- workers ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-list")
    def load_versions(self) -> None:
        self.post_if_current(VersionsLoaded(self.backend.registry.list_models()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-detail")
    def load_detail(self, model_id: str, version: str) -> None:
        registry = self.backend.registry
        meta = registry.get_model(model_id, version)
        history = registry.status_history(model_id, version)
        self.post_if_current(VersionDetailLoaded(VersionDetail(meta, history)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-compare")
    def load_comparison(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        self.post_if_current(ComparisonLoaded(self.backend.registry.compare_models(a, b)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-write")
    def apply_tags(self, ref: str, add: list[str], remove: list[str]) -> None:
        model_id, _, version = ref.rpartition(":")
        meta = self.backend.registry.set_tags(model_id, version, add=add, remove=remove)
        self.post_message(ActionDone(f"{ref} tags: {', '.join(meta.tags) or 'none'}", ref))

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-write")
    def apply_delete(self, ref: str) -> None:
        model_id, _, version = ref.rpartition(":")
        self.backend.registry.delete_model(model_id, version)
        self.post_message(ActionDone(f"{ref} deleted"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-verify")
    def run_verify(self, ref: str) -> None:
        model_id, _, version = ref.rpartition(":")
        checked = self.backend.registry.verify_weights(model_id, version)  # raises on mismatch
        size, digest = checked["size"], checked["checksum"]
        self.post_message(ActionDone(f"{ref}: {size:,} bytes match sha256 {digest[:16]}…"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="registry-write")
    def apply_transition(self, ref: str, target: str, reason: str) -> None:
        model_id, _, version = ref.rpartition(":")
        self.backend.registry.update_status(model_id, version, target, reason=reason)
        self.post_message(ActionDone(f"{ref} is now {target.upper()}", select=ref))

    # ---- rendering -------------------------------------------------------------------------------

    @on(VersionsLoaded)
    def _versions_loaded(self, message: VersionsLoaded) -> None:
        versions = message.payload
        signature = tuple(
            (m.ref, m.status.value, tuple(m.tags), tuple(sorted(m.metrics.items())))
            for m in versions
        )
        self.versions = versions
        self.repopulate(signature)
        if not versions:
            self.query_one(DetailPane).show(
                Text(
                    "No versions registered yet.\n\nTrain one with `nightscan train --model-id "
                    "ID --version v1.0.0`, or seed a demo home with `nightscan demo`."
                ),
                title="Detail",
            )

    def populate(self) -> None:
        table = self.table
        self._columns = columns = self.fitted(table.size.width or self.size.width)  # type: ignore[assignment]
        keep = self.selected
        rows = [m for m in self.versions if self._matches(m)]
        rows.sort(key=SORT_KEYS[self.sort_key], reverse=self.sort_reverse)
        self.shown = rows
        specs = [ColumnSpec("mark", "", width=1)]
        for key, label, _getter in COLUMNS:
            if key not in columns:
                continue
            if key == self.sort_key:
                label += " ▼" if self.sort_reverse else " ▲"
            # Tags are free text; at 80 columns they must not push the table sideways.
            width = 18 if key == "tags" and columns == NARROW else None
            specs.append(ColumnSpec(key, label, width=width))
        table.set_rows(specs, [(meta.ref, self._cells(meta, columns)) for meta in rows])
        self.finish(len(rows), len(self.versions), keep)

    def _cells(self, meta: Any, columns: tuple[str, ...]) -> list[Any]:
        tones = self.tones
        assert tones is not None
        f1 = _f1(meta)
        values = {
            "model": Text(meta.model_id),
            "version": Text(meta.version, style="bold"),
            "status": tones.status(meta.status.value),
            "architecture": Text(meta.architecture),
            "accuracy": Text(fmt.num(meta.metrics.get("accuracy")), justify="right"),
            "f1": Text(fmt.num(f1), justify="right"),
            "size": Text(fmt.size(meta.file_size_bytes), justify="right"),
            "sha256": Text(fmt.short_checksum(meta.checksum, 8), style=tones.style("muted")),
            "tags": Text(", ".join(meta.tags), overflow="ellipsis", no_wrap=True),
            "created": Text(fmt.when(meta.created_at)[:10]),
        }
        mark = Text("●", style=tones.style("accent", bold=True)) if meta.ref in self.marked else ""
        return [mark] + [values[k] for k, _l, _g in COLUMNS if k in columns]

    def _matches(self, meta: Any) -> bool:
        if not self.filter:
            return True
        values = {
            "model": meta.model_id,
            "status": meta.status.value,
            "tag": " ".join(meta.tags),
            "arch": meta.architecture,
        }
        haystack = " ".join(
            [meta.ref, meta.name, meta.status.value, meta.architecture, meta.checksum[:12]]
            + meta.tags
        )
        return self.filter.matches(values, haystack)

    def show_filtered_out(self) -> None:
        self.detail = None  # what was selected is hidden: its detail goes, and loads again after
        super().show_filtered_out()

    def column_tier(self, width: int) -> object:
        return visible_columns(width)

    def rerender(self) -> None:
        self.populate()
        self._show_detail()

    def _show_detail(self) -> None:
        pane = self.query_one(DetailPane)
        assert self.tones is not None
        if self.compared is not None and len(self.marked) == 2:
            pane.show(comparison(self.compared, self.tones), title="Compare")
        elif self.detail is not None:
            meta, history = self.detail
            pane.show(model_detail(meta, history, self.versions, self.tones), title=meta.ref)

    @on(VersionDetailLoaded)
    def _detail_loaded(self, message: VersionDetailLoaded) -> None:
        self.detail = (message.payload.meta, message.payload.history)
        if self.detail[0].ref == self.selected:
            self._show_detail()
        self.refresh_bindings()

    @on(ComparisonLoaded)
    def _comparison_loaded(self, message: ComparisonLoaded) -> None:
        self.compared = message.payload
        self._show_detail()

    def after_action(self) -> None:
        if self.selected:
            self.load_detail(*self.selected.rsplit(":", 1))

    # ---- events ----------------------------------------------------------------------------------

    def selection_loaded(self) -> bool:
        return self.detail is not None

    def load_selection(self, key: str) -> None:
        if len(self.marked) < 2:
            self.load_detail(*key.rsplit(":", 1))

    @on(DataTable.HeaderSelected, "#versions")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key not in SORT_KEYS:
            return
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_key, self.sort_reverse = key, False
        self.populate()

    # ---- actions ---------------------------------------------------------------------------------

    def action_state(self, action: str) -> bool | None:
        if action in ("transition", "tags", "verify"):
            return True if self.selected else None
        if action == "delete":
            deployed = self.detail is not None and self.detail[0].status is ModelStatus.DEPLOYED
            return True if self.selected and not deployed else None
        if action == "compare":
            return True if len(self.marked) == 2 else None
        if action == "clear_marks":  # Esc: the marks first, then an applied filter
            return bool(self.marked) or self.check_action("clear_filter", ()) is True
        return True

    def action_sort(self) -> None:
        keys = list(self._columns)
        i = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.sort_key, self.sort_reverse = keys[(i + 1) % len(keys)], False
        self.notify(f"sorted by {self.sort_key}", timeout=2)
        self.populate()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.populate()

    def action_mark(self) -> None:
        ref = self.selected
        if ref is None:
            return
        if ref in self.marked:
            self.marked.remove(ref)
        else:
            self.marked = (self.marked + [ref])[-2:]
        self.compared = None
        self._redraw_marks()
        if len(self.marked) == 2:
            self.action_compare()
        elif self.selected:
            self.load_detail(*self.selected.rsplit(":", 1))
        self.refresh_bindings()

    def _redraw_marks(self) -> None:
        assert self.tones is not None
        table = self.table
        for meta in self.shown:
            mark = "●" if meta.ref in self.marked else ""
            table.update_cell(
                meta.ref, "mark", Text(mark, style=self.tones.style("accent", bold=True))
            )

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.notify("mark two versions with space first", severity="warning")
            return
        a, b = (tuple(ref.rsplit(":", 1)) for ref in self.marked)
        self.load_comparison(a, b)

    def action_clear_marks(self) -> None:
        if not self.marked:
            self.action_clear_filter()
            return
        self.marked = []
        self.compared = None
        self._redraw_marks()
        if self.selected:
            self.load_detail(*self.selected.rsplit(":", 1))
        self.refresh_bindings()

    def action_transition(self) -> None:
        if not self.writable("lifecycle transitions"):
            return
        if self.detail is None or self.detail[0].ref != self.selected:
            self.notify("select a version first", severity="warning")
            return
        meta = self.detail[0]
        if meta.status is ModelStatus.DEPLOYED:  # the deployments own it while they serve it
            self.notify(
                f"{meta.ref} is DEPLOYED: a deployment serves it; roll it back or undeploy it "
                "on the deployments screen",
                severity="warning",
            )
            return
        # DEPLOYED is entered by deploying (the deployments screen's d), never by hand.
        allowed = [
            s.value for s in allowed_transitions(meta.status) if s is not ModelStatus.DEPLOYED
        ]
        self.app.push_screen(
            TransitionModal(meta.ref, meta.status.value, allowed),
            partial(self._transition_chosen, meta.ref),
        )

    def _transition_chosen(self, ref: str, result: tuple[str, str] | None) -> None:
        if result is None or not self.writable("lifecycle transitions"):
            return
        target, reason = result
        self.apply_transition(ref, target, reason or "from the console")

    def _selected_meta(self) -> Any | None:
        if self.detail is None or self.detail[0].ref != self.selected:
            self.notify("select a version first", severity="warning")
            return None
        return self.detail[0]

    def action_tags(self) -> None:
        meta = self._selected_meta()
        if not self.writable("editing tags") or meta is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Tags of {meta.ref}",
                "Comma-separated; the change is recorded in the audit log.",
                confirm_label="Save",
                reason=", ".join(meta.tags),
                field_label="Tags",
            ),
            partial(self._tags_chosen, meta.ref, list(meta.tags)),
        )

    def _tags_chosen(self, ref: str, old: list[str], text: str | None) -> None:
        if text is None or not self.writable("editing tags"):
            return
        new = [t.strip() for t in text.split(",") if t.strip()]
        add = [t for t in new if t not in old]
        remove = [t for t in old if t not in new]
        if add or remove:
            self.apply_tags(ref, add, remove)

    def action_verify(self) -> None:
        if self.selected:
            self.notify(f"verifying {self.selected}…", timeout=2)
            self.run_verify(self.selected)

    def action_delete(self) -> None:
        meta = self._selected_meta()
        if not self.writable("deleting versions") or meta is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Delete {meta.ref}?",
                f"The version leaves the registry ({meta.status.value.upper()}); its weights go "
                "too unless another version shares them. The audit log keeps the record.",
                confirm_label="Delete",
                danger=True,
            ),
            partial(self._delete_confirmed, meta.ref),
        )

    def _delete_confirmed(self, ref: str, result: str | None) -> None:
        if result is not None and self.writable("deleting versions"):
            self.selected = None
            self.detail = None
            self.apply_delete(ref)

    def palette_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        commands: list[tuple[str, Callable[[], Any], str]] = []
        for status in ModelStatus:
            commands.append(
                (
                    f"Registry: show {status.value.upper()} versions",
                    partial(self._set_filter, f"status:{status.value}"),
                    "filter",
                )
            )
        commands.append(("Registry: clear the filter", partial(self._set_filter, ""), "filter"))
        return commands
