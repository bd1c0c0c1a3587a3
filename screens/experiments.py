"""Experiments screen (2): list with progress; detail with split, SRM, metrics, recommendation,
power and allocation over time; create, start, stop."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding

from core.experiments.analysis_view import AnalysisView
from screens import fmt
from screens.list_detail import ListDetailScreen
from screens.messages import (
    ActionDone,
    ExperimentDetail,
    ExperimentDetailLoaded,
    ExperimentRow,
    ExperimentsLoaded,
)
from screens.modals.confirm import ConfirmModal
from screens.modals.experiment_form import ExperimentForm
from screens.panels.experiment_detail import experiment_detail
from screens.widgets.detail_pane import DetailPane

UNUSABLE = ("failed", "retired")


class ExperimentsScreen(ListDetailScreen):
    MODE = "experiments"
    TITLE_TEXT = "Experiments"
    TABLE_ID = "experiments"
    TABLE_TITLE = "Experiments"
    POLLS = (
        ("experiments-list", 3.0, "load_experiments"),
        ("experiment-detail", 2.0, "_load_selected"),
    )
    ROW_KEY = "experiment_id"
    MUTATING = frozenset({"new", "start", "stop", "allocate"})
    CHANGES: ClassVar[dict[str, str]] = {
        "new": "experiments.create_experiment",
        "start": "experiments.start_experiment",
        "stop": "experiments.stop_experiment",
        "allocate": "experiments.set_allocation",
    }
    FILTER_HINT = "/ filter: text, status:running mode:thompson model:v2.1"
    FILTER_KEYS: ClassVar[tuple[str, ...]] = ("status", "mode", "model")
    DISABLED_HINTS: ClassVar[dict[str, str]] = {
        "start": "select a DRAFT experiment",
        "stop": "select a RUNNING experiment",
        "allocate": "select a DRAFT or RUNNING experiment",
    }
    BINDINGS = [
        Binding("n", "new", "New", id="experiments.new"),
        Binding("s", "start", "Start", id="experiments.start"),
        Binding("x", "stop", "Stop", id="experiments.stop"),
        Binding("a", "allocate", "Reallocate", show=False, id="experiments.allocate"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.detail: ExperimentDetail | None = None

    def action_reload(self) -> None:
        self._signature = ()
        self.load_experiments()
        self._load_selected()

    # ---- workers ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiments-list")
    def load_experiments(self) -> None:
        manager = self.backend.experiments
        rows = []
        for info in manager.list_experiments():
            units: dict[str, int] = {}
            if info.started_at is not None:
                status = manager.get_experiment_status(info.experiment_id)
                primary = info.config.primary
                units = {v: r.get(primary, 0) for v, r in status["results"].items()}
            rows.append(ExperimentRow(info, units))
        self.post_if_current(ExperimentsLoaded(rows))

    def _load_selected(self) -> None:
        if self.selected:
            self.load_detail(self.selected)
        else:
            # Nothing to show yet; the poll re-arms when this (empty) worker ends.
            self.load_detail(None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiment-detail")
    def load_detail(self, experiment_id: str | None) -> None:
        if experiment_id is None:
            return
        manager = self.backend.experiments
        info = manager.get_experiment(experiment_id)
        found = manager.analyze_experiment(experiment_id) if info.started_at else None
        analysis = AnalysisView.from_dict(found) if found is not None else None
        history = manager.allocation_history(experiment_id)
        self.post_if_current(ExperimentDetailLoaded(ExperimentDetail(info, analysis, history)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiments-write")
    def run_start(self, experiment_id: str) -> None:
        self.backend.experiments.start_experiment(experiment_id)
        self.post_message(ActionDone(f"experiment {experiment_id} started", experiment_id))

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiments-write")
    def run_stop(self, experiment_id: str, reason: str) -> None:
        self.backend.experiments.stop_experiment(experiment_id, reason)
        self.post_message(ActionDone(f"experiment {experiment_id} stopped", experiment_id))

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiments-write")
    def run_allocate(self, experiment_id: str, allocation: dict[str, float]) -> None:
        manager = self.backend.experiments
        change = manager.set_allocation(experiment_id, allocation, "set from the console")
        split = " / ".join(f"{v} {p:g}%" for v, p in change.allocation.items())
        self.post_message(ActionDone(f"{experiment_id} now splits {split}", experiment_id))

    # ---- rendering -------------------------------------------------------------------------------

    @on(ExperimentsLoaded)
    def _loaded(self, message: ExperimentsLoaded) -> None:
        rows = [(r.info, r.units) for r in message.payload]
        signature = tuple(
            (i.experiment_id, i.status.value, i.allocation_version, tuple(u.items()))
            for i, u in rows
        )
        self.rows = rows
        self.repopulate(signature)
        if not rows:
            self.query_one(DetailPane).show(
                Text(
                    "No experiments yet. Press n to create one (control and treatment are "
                    "model versions from the registry)."
                ),
                title="Detail",
            )

    def populate(self) -> None:
        assert self.tones is not None
        narrow = self.fitted(self.table.size.width or self.size.width) == "narrow"
        columns = ["experiment", "status", "mode", "split", "progress", "started", "ran"]
        if narrow:
            columns = ["experiment", "status", "split", "progress"]
        self.fill(columns, self._cells)

    def _cells(self, info: Any, units: dict[str, int], columns: list[str]) -> list[Any]:
        tones = self.tones
        assert tones is not None
        cfg = info.config
        least = min(units.values()) if units else 0
        frac = least / cfg.minimum_sample_size if cfg.minimum_sample_size else 0.0
        progress = Text(fmt.bar(frac, 10), style=tones.style("good" if frac >= 1 else "primary"))
        progress.append(f" {least:,}/{cfg.minimum_sample_size:,}")
        values = {
            "experiment": Text(info.experiment_id, style="bold"),
            "status": tones.status(info.status.value),
            "mode": Text(cfg.allocation_mode),
            "split": Text(" / ".join(f"{p:g}" for p in info.allocation.values())),
            "progress": progress,
            "started": Text(fmt.when(info.started_at) if info.started_at else "—"),
            "ran": Text(fmt.duration(info.duration_hours(fmt.now())) if info.started_at else "—"),
        }
        return [values[c] for c in columns]

    def _matches(self, info: Any) -> bool:
        if not self.filter:
            return True
        models = " ".join(info.config.model_variants.values())
        values = {"status": info.status.value, "mode": info.config.allocation_mode, "model": models}
        hay = " ".join([info.experiment_id, info.name, info.description, info.status.value, models])
        return self.filter.matches(values, hay)

    def column_tier(self, width: int) -> object:
        return "narrow" if width < 100 else "full"

    def rerender(self) -> None:
        self.populate()
        self._show_detail()

    def _show_detail(self) -> None:
        if self.detail is None or self.tones is None:
            return
        pane = self.query_one(DetailPane)
        info = self.detail.info
        pane.show(
            experiment_detail(
                info,
                self.detail.analysis,
                self.detail.history,
                self.tones,
                fmt.now(),
                width=pane.size.width or 100,
            ),
            title=info.experiment_id,
        )

    @on(ExperimentDetailLoaded)
    def _detail_loaded(self, message: ExperimentDetailLoaded) -> None:
        payload = message.payload
        if payload.info.experiment_id != self.selected:
            return
        if self.detail is not None and self.detail.same_as(payload):
            return
        self.detail = payload
        self._show_detail()
        self.refresh_bindings()

    # ---- events ----------------------------------------------------------------------------------

    def selection_loaded(self) -> bool:
        return self.detail is not None

    def load_selection(self, key: str) -> None:
        self.detail = None
        self.load_detail(key)

    # ---- actions ---------------------------------------------------------------------------------

    def action_state(self, action: str) -> bool | None:
        info = self._selected_info()
        if action == "start":
            return True if info is not None and info.status.value == "draft" else None
        if action == "stop":
            return True if info is not None and info.status.value == "running" else None
        if action == "allocate":
            usable = info is not None and not info.status.ended
            return True if usable else None
        return True

    def action_new(self) -> None:
        if self.writable("creating experiments"):
            self.open_experiment_form()

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiment-form")
    def open_experiment_form(self) -> None:
        # The registry is read when the form opens, not on every poll: it may be large.
        models = [
            (m.ref, m.status.value)
            for m in self.backend.registry.list_models()
            if m.status.value not in UNUSABLE
        ]
        self.app.call_from_thread(self._show_experiment_form, models)

    def _show_experiment_form(self, models: list[tuple[str, str]]) -> None:
        if not self.is_current or not self.writable("creating experiments"):
            return
        if not models:
            self.notify("register a model version first", severity="warning")
            return
        self.app.push_screen(ExperimentForm(models), self._created)

    def _created(self, experiment_id: str | None) -> None:
        if experiment_id:
            self.post_message(ActionDone(f"experiment {experiment_id} created", experiment_id))

    def action_start(self) -> None:
        info = self._selected_info()
        if not self.writable("starting experiments") or info is None:
            return
        split = ", ".join(f"{v} {p:g}%" for v, p in info.allocation.items())
        self.app.push_screen(
            ConfirmModal(
                f"Start {info.experiment_id}?",
                f"Traffic will be split {split} between "
                + ", ".join(info.config.model_variants.values()),
                confirm_label="Start",
            ),
            partial(self._start_confirmed, info.experiment_id),
        )

    def _start_confirmed(self, experiment_id: str, reason: str | None) -> None:
        if reason is not None and self.writable("starting experiments"):
            self.run_start(experiment_id)

    def action_stop(self) -> None:
        info = self._selected_info()
        if not self.writable("stopping experiments") or info is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Stop {info.experiment_id}?",
                "Routing ends and the results are frozen; a stopped experiment cannot restart.",
                confirm_label="Stop",
                reason="stopped from the console",
                danger=True,
            ),
            partial(self._stop_confirmed, info.experiment_id),
        )

    def _stop_confirmed(self, experiment_id: str, reason: str | None) -> None:
        if reason is not None and self.writable("stopping experiments"):
            self.run_stop(experiment_id, reason)

    def action_allocate(self) -> None:
        info = self._selected_info()
        if not self.writable("reallocating traffic") or info is None:
            return
        current = ", ".join(f"{v}={p:g}" for v, p in info.allocation.items())
        self.app.push_screen(
            ConfirmModal(
                f"Traffic split of {info.experiment_id}",
                "Percent per variant, summing to 100. Units move only where they must, and "
                "the change is kept in the allocation history (SRM accounts for it).",
                confirm_label="Apply",
                reason=current,
                field_label="Split",
            ),
            partial(self._allocation_chosen, info.experiment_id),
        )

    def _allocation_chosen(self, experiment_id: str, text: str | None) -> None:
        if text is None or not self.writable("reallocating traffic"):
            return
        allocation: dict[str, float] = {}
        for part in text.replace(";", ",").split(","):
            name, sep, value = part.partition("=")
            try:
                allocation[name.strip()] = float(value)
            except ValueError:
                sep = ""
            if not sep or not name.strip():
                self.notify(f"expected VARIANT=PERCENT, got {part.strip()!r}", severity="error")
                return
        self.run_allocate(experiment_id, allocation)

    def palette_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        return [
            (
                f"Experiments: open {info.experiment_id}",
                partial(self._open_id, info.experiment_id),
                f"{info.status.value} · {info.name}",
            )  # fmt: skip
            for info, _units in self.rows
        ]
