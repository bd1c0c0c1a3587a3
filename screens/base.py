"""What every console screen shares: the nav bar and footer, the ``/`` filter, read-only
guarding, errors as notifications, and Dolphie-style polls.

Polls: ``poll(group, interval, start)`` registers a worker launcher. When the worker of that
group ends (success or error) the next run is armed with ``set_timer``, so runs never overlap
and a slow one drops ticks instead of piling them up. A poll whose timer fires while its screen
is not the current one goes idle and restarts when the screen is shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState, get_current_worker

from core.roles import refusal
from screens.tones import Tones
from screens.widgets.filter_input import FilterInput
from screens.widgets.footer import LeanFooter
from screens.widgets.nav import NavBar

if TYPE_CHECKING:
    from textual.message import Message

    from core.backend import LocalBackend, RemoteBackend


def describe_error(error: BaseException | None) -> str:
    """One line for a notification: a NightScanError's own message, else the type and text."""
    from core.errors import NightScanError

    if error is None:
        return "unknown error"
    if isinstance(error, NightScanError):
        return str(error)
    return f"{type(error).__name__}: {error}"


class NightScanScreen(Screen):
    """Subclasses set MODE, MUTATING and FILTER_HINT, and implement compose_body()."""

    MODE: ClassVar[str] = ""
    MUTATING: ClassVar[frozenset[str]] = frozenset()
    # Mutating action -> the backend change it makes (a core.roles.NEEDED_ROLE key): an attached
    # token whose role may not make it sees the action disabled, with the reason.
    CHANGES: ClassVar[dict[str, str]] = {}
    FILTER_HINT: ClassVar[str] = "filter"
    SHARED_BINDINGS: ClassVar[list[Binding]] = [
        Binding("slash", "focus_filter", "Filter", id="screen.filter"),
        Binding("f5", "reload", "Reload", show=False, id="screen.reload"),
        # Esc in the list too (the filter's own Esc only works while it has the focus); only
        # while a filter is applied, so a screen's own Esc (clear marks) comes first.
        Binding("escape", "clear_filter", "Clear the filter", show=False, id="screen.clear_filter"),
    ]
    BINDINGS = SHARED_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        self._poll_specs: dict[str, tuple[float, Callable[[], object]]] = {}
        self._poll_timers: dict[str, Timer] = {}
        self._poll_idle: set[str] = set()
        self._poll_errors: dict[str, str] = {}  # last error per poll: notify once, not per tick
        self.tones: Tones | None = None

    @property
    def backend(self) -> LocalBackend | RemoteBackend:
        """Where the data lives: this home's core services or an attached server (workers
        call it from their threads; it only reads an attribute of the app)."""
        return self.app.backend  # type: ignore[attr-defined]

    # ---- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield FilterInput(placeholder=self.FILTER_HINT, id="filter")
        yield from self.compose_body()
        yield LeanFooter()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.tones = Tones.of(self.app)
        self.app.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, _theme: object) -> None:
        self.tones = Tones.of(self.app)
        self.rerender()

    def rerender(self) -> None:
        """Rebuild Rich renderables (colours come from the theme)."""

    def column_tier(self, width: int) -> object:
        """Which column set fits a list this wide; a change re-populates the list."""
        return None

    def on_resize(self) -> None:
        self.call_after_refresh(self._refit)

    def _refit(self) -> None:
        main = self.main_widget
        if main is None or not main.size.width:
            return
        if self.column_tier(main.size.width) != getattr(self, "_fitted_tier", None):
            self.populate()

    def populate(self) -> None:
        """Rebuild the main list from what is in memory (and call ``fitted``)."""

    def fitted(self, width: int) -> object:
        """Called by populate with the width it laid out for; returns the column tier."""
        self._fitted_tier = self.column_tier(width)
        return self._fitted_tier

    @property
    def main_widget(self) -> Widget | None:
        """The list that Esc and Enter in the filter return to."""
        return None

    def on_screen_resume(self) -> None:
        self.refresh_nav()
        for group in list(self._poll_idle):
            self._poll_idle.discard(group)
            self._run_poll(group)

    def refresh_nav(self) -> None:
        for nav in self.query(NavBar):
            nav.refresh_state()
        self.refresh_bindings()

    # ---- filter ------------------------------------------------------------------------------

    def action_clear_filter(self) -> None:
        self.query_one("#filter", FilterInput).value = ""  # Input.Changed shows every row again

    def action_focus_filter(self) -> None:
        self.query_one("#filter", FilterInput).focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        if self.main_widget is not None:
            self.main_widget.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.apply_filter(event.value)

    def apply_filter(self, text: str) -> None:
        """Re-filter the list in memory."""

    def on_key(self, event: events.Key) -> None:
        read_only = getattr(self.app, "read_only", False)
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            key = self.app.get_key_display(binding)
            what = f"{key} ({binding.description or binding.action})"
            if read_only and binding.action in self.MUTATING:
                self.refuse(what)
                event.stop()
                return
            reason = self.role_refusal(binding.action)
            if reason:
                self.notify(f"{what}: {reason}", title="Not allowed", severity="warning")
                event.stop()
                return

    # ---- read-only ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.query_one("#filter", FilterInput).value) or False
        if action in self.MUTATING and getattr(self.app, "read_only", False):
            return False  # hidden from the footer, help and palette; on_key explains why
        if self.role_refusal(action):
            return None  # shown disabled; help and on_key give the reason
        return self.action_state(action)

    def role_refusal(self, action: str) -> str | None:
        """Why the attached token's role may not do ``action`` (None: it may, or no token)."""
        change = self.CHANGES.get(action)
        backend = getattr(self.app, "backend", None)
        if change is None or backend is None:
            return None
        return refusal(backend.role, change)

    def disabled_reason(self, action: str) -> str:
        """Why ``action`` is not available now, in words for help."""
        return self.role_refusal(action) or getattr(self, "DISABLED_HINTS", {}).get(
            action, "not available now"
        )

    def action_state(self, action: str) -> bool | None:
        """True: available; None: shown but disabled (nothing selected); False: hidden."""
        return True

    def refuse(self, what: str) -> None:
        self.notify(
            f"read-only mode: {what} is disabled ({self.app.read_only_hint})",  # type: ignore[attr-defined]
            title="Read-only",
            severity="warning",
        )

    def writable(self, what: str) -> bool:
        """Checked again when a confirmation returns: read-only may have been switched on."""
        if getattr(self.app, "read_only", False):
            self.refuse(what)
            return False
        return True

    # ---- workers and polls ---------------------------------------------------------------------

    def post_if_current(self, message: Message) -> None:
        """From a worker: post unless a newer worker of the same group replaced this one."""
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    def poll(self, group: str, interval: float, start: Callable[[], object]) -> None:
        self._poll_specs[group] = (interval, start)
        self._run_poll(group)

    def _run_poll(self, group: str) -> None:
        self._poll_timers.pop(group, None)
        if not self.is_current:
            self._poll_idle.add(group)
            return
        self._poll_specs[group][1]()

    def _arm(self, group: str) -> None:
        old = self._poll_timers.pop(group, None)
        if old is not None:
            old.stop()
        interval = self._poll_specs[group][0]
        self._poll_timers[group] = self.set_timer(interval, partial(self._run_poll, group))

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        polled = worker.group in self._poll_specs
        if worker.state is WorkerState.ERROR:
            text = describe_error(worker.error)
            # A poll reports an error once, not every tick, nor again for every other poll
            # that meets the same one (a server that went away).
            if not polled or text not in self._poll_errors.values():
                self.notify(text, title="Error", severity="error", timeout=8)
            if polled:
                self._poll_errors[worker.group] = text
        elif worker.state is WorkerState.SUCCESS:
            self._poll_errors.pop(worker.group, None)
        if polled and worker.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            self._arm(worker.group)

    # ---- drill-down ----------------------------------------------------------------------------

    def drill(self, pane: Widget) -> None:
        """Enter: the detail fills the screen; Esc (Textual's minimize) brings the list back."""
        self.maximize(pane, container=False)
        pane.focus()

    def watch_maximized(self, maximized: Widget | None) -> None:
        if maximized is None and self.main_widget is not None:
            self.call_after_refresh(self.main_widget.focus)
