"""The operations console: a Textual app over the same core services as the CLI.

``make_app()`` builds it for the CLI, the tests and the screenshot script alike;
``run_console()`` runs it in the terminal and stops any background services afterwards.
The screens reach the data through ``app.backend``: a home's services, or a running server
(``nightscan tui --server URL --token T``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Protocol

from textual import events, on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

import screens
from core.backend import LocalBackend, RemoteBackend
from nightscan_tui.idle_gc import IdleCollector
from screens.base import NightScanScreen, describe_error
from screens.commands import ScreenActionsProvider
from screens.deployments import DeploymentsScreen
from screens.events import EventsScreen
from screens.experiments import ExperimentsScreen
from screens.modals.help import HelpModal
from screens.registry import RegistryScreen


class Services(Protocol):
    """Background services the console starts and the caller stops
    (``core.console_services.ServingServices``, ``core.demo.DemoServices``)."""

    kind: str  # "serving" or "demo": what the header calls them
    url: str

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    # Optional: ``notices() -> list[tuple[str, str]]``, (message, severity) to show since the
    # last call (an experiment ended, requests are refused); the console polls it every second.


IDLE_GC_CHECK_S = 1.0
NOTICES_CHECK_S = 1.0


class NightScanApp(App[None]):
    TITLE = "NightScan Ops"
    CSS_PATH = str(Path(screens.__file__).parent / "app.tcss")
    MODES = {
        "registry": RegistryScreen,
        "experiments": ExperimentsScreen,
        "deployments": DeploymentsScreen,
        "events": EventsScreen,
    }
    DEFAULT_MODE = "registry"
    # One provider: the console's commands, then Textual's (so ours always lead the palette).
    COMMANDS = {ScreenActionsProvider}
    # Wide terminals put the detail beside the list instead of below it.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (170, "-wide")]
    BINDINGS = [
        Binding("1", "switch_mode('registry')", "Registry", show=False, id="app.registry"),
        Binding("2", "switch_mode('experiments')", "Experiments", show=False, id="app.experiments"),
        Binding("3", "switch_mode('deployments')", "Deployments", show=False, id="app.deployments"),
        Binding("4", "switch_mode('events')", "Events", show=False, id="app.events"),
        Binding("question_mark", "help", "Help", id="app.help"),
        # Naming command_palette here replaces Textual's default ctrl+p binding, so bind both.
        Binding(
            "ctrl+p", "command_palette", "Palette", show=False, priority=True, id="app.palette"
        ),
        Binding("colon", "command_palette", "Jump / command", show=False, id="app.jump"),
        Binding("ctrl+r", "toggle_read_only", "Read-only on/off", show=False, id="app.read_only"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    read_only: reactive[bool] = reactive(False)

    def __init__(
        self,
        read_only: bool = False,
        services: Services | None = None,
        cursor_blink: bool = True,
        backend: LocalBackend | RemoteBackend | None = None,
    ) -> None:
        super().__init__()
        self.backend = backend or LocalBackend()
        # A viewer token may read only: the console says so rather than offering 403s.
        self.viewer_only = self.backend.role == "viewer"
        self.set_reactive(NightScanApp.read_only, read_only or self.viewer_only)
        self.services = services
        self.collector = IdleCollector()
        self.cursor_blink = cursor_blink
        self.live_label = ""
        self.live_short = ""  # what the header shows when live_label does not fit
        if isinstance(self.backend, RemoteBackend):
            b = self.backend
            self.live_label = f"attached · {b.location} · {b.user} ({b.role})"
            host = b.location.split("://", 1)[-1]
            self.live_short = f"{host} ({b.role})"
        # Set once the services' start() has returned (or failed): run_console waits on it
        # before stopping them, so a quit during start-up cannot leave a thread behind.
        self.services_settled = threading.Event()
        if services is None:
            self.services_settled.set()

    def on_mount(self) -> None:
        if self.services is not None:
            self.live_label = f"starting {self._services_kind} services…"
            self.start_services()
        self.collector.start()
        self.set_timer(1.0, self.collector.freeze)
        self.set_interval(IDLE_GC_CHECK_S, self.collector.tick)

    def on_unmount(self) -> None:
        self.collector.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self.collector.touched()
        await super().on_event(event)

    # ---- actions -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Under a dialog, switching screens or stacking help would strand the dialog.
        if isinstance(self.screen, ModalScreen) and action in ("switch_mode", "help"):
            return False
        return True

    @property
    def read_only_hint(self) -> str:
        """How to get out of read-only mode, if one can."""
        return (
            "a viewer token cannot change anything" if self.viewer_only else "ctrl+r allows changes"
        )

    def action_toggle_read_only(self) -> None:
        if self.viewer_only:
            self.notify("this token is a viewer: the server refuses changes", severity="warning")
            return
        self.read_only = not self.read_only
        self.notify(
            "read-only: changes are disabled" if self.read_only else "changes are allowed",
            title="Mode",
        )

    def watch_read_only(self, _value: bool) -> None:
        if isinstance(self.screen, NightScanScreen):
            self.screen.refresh_nav()

    def action_help(self) -> None:
        """Every binding: this screen's own (with why one is unavailable now), the focused
        widget's, and the global ones."""
        screen = self.screen
        mutating = getattr(screen, "MUTATING", frozenset())
        here: list[tuple[str, str]] = []
        for binding in getattr(screen, "BINDINGS", []):
            if not isinstance(binding, Binding) or not binding.description:
                continue
            state = screen.check_action(binding.action, ())
            label = binding.description
            if state is False and self.read_only and binding.action in mutating:
                label += f" (read-only: {self.read_only_hint})"
            elif state is not True:
                why = getattr(screen, "disabled_reason", None)
                label += f" ({why(binding.action) if why else 'not available now'})"
            here.append((self.get_key_display(binding), label))
        shared = list(NightScanScreen.SHARED_BINDINGS)
        # A shared key the screen binds itself (Esc on the registry) is listed once, as its own.
        taken = {b.key for b in getattr(screen, "BINDINGS", []) if isinstance(b, Binding)}
        here += [(self.get_key_display(b), b.description) for b in shared if b.key not in taken]
        # Everywhere: the console's own keys first, then Textual's (quit, copy, maximize...).
        own: list[tuple[str, str]] = []
        textual: list[tuple[str, str]] = []
        focused: list[tuple[str, str]] = []
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or active.node is screen and binding in shared:
                continue
            row = (self.get_key_display(binding), binding.description)
            if active.node is self or active.node is screen:
                if row not in here and row not in own and row not in textual:
                    ours = (binding.id or "").split(".")[0] in ("app", "screen")
                    (own if ours else textual).append(row)
            elif isinstance(active.node, Widget):
                focused.append(row)
        own.append(("esc", "Back: leave the detail view, the filter or a dialog"))
        everywhere = own + textual
        title = getattr(screen, "TITLE_TEXT", "") or "NightScan Ops"
        sections = [
            (f"{title} screen", here),
            ("In the focused list", focused),
            ("Everywhere", everywhere),
        ]
        hint = getattr(screen, "FILTER_HINT", "")
        self.push_screen(HelpModal(f"Keys · {title}", sections, hint))

    # ---- services ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="services")
    def start_services(self) -> str:
        try:
            assert self.services is not None
            self.services.start()
            return self.services.url
        finally:
            self.services_settled.set()

    @on(Worker.StateChanged)
    def _services_state(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "services":
            return
        if worker.state is WorkerState.SUCCESS:
            self.collector.freeze()  # the server's models and torch are loaded now
            url = worker.result
            port = url.rsplit(":", 1)[-1]
            if self._services_kind == "demo":
                self.live_label = f"live · {url}"
                self.live_short = f"live :{port}"
                said = "traffic simulator and experiment monitor running"
            else:
                self.live_label = f"serving · {url} · inference, experiments, health, canaries"
                self.live_short = f"serving :{port}"
                said = "experiment monitor, health checks and canary steps running here"
            self.notify(
                f"inference server on {url}; {said}",
                title=f"{self._services_kind.capitalize()} services",
            )
            self.set_interval(NOTICES_CHECK_S, self._show_service_notices)
        elif worker.state is WorkerState.ERROR:
            self.live_label = ""
            self.notify(describe_error(worker.error), title="Services failed", severity="error")
        if isinstance(self.screen, NightScanScreen):
            self.screen.refresh_nav()

    @property
    def _services_kind(self) -> str:
        return getattr(self.services, "kind", "demo")

    def _show_service_notices(self) -> None:
        # What the services say (an experiment ended, requests are refused) is news: a toast,
        # so the operator hears it on any screen.
        notices = getattr(self.services, "notices", None)  # optional for a Services
        for message, severity in notices() if notices else []:
            title = "Demo" if self._services_kind == "demo" else "Serving"
            self.notify(message, title=title, severity=severity, timeout=8)


def make_app(
    home: str | os.PathLike | None = None,
    read_only: bool = False,
    services: Services | None = None,
    cursor_blink: bool = True,
    backend: LocalBackend | RemoteBackend | None = None,
) -> NightScanApp:
    """The console on ``home`` (default: the current core context's home), or on ``backend``."""
    if home is not None and backend is None:
        from core import get_context
        from core.context import configure

        path = Path(home).expanduser().resolve()
        os.environ["NIGHTSCAN_HOME"] = str(path)  # child processes agree
        if get_context().settings.home.resolve() != path:
            configure(path)
    return NightScanApp(
        read_only=read_only, services=services, cursor_blink=cursor_blink, backend=backend
    )


def run_console(
    home: str | os.PathLike | None = None,
    read_only: bool = False,
    services: Services | None = None,
    server: str | None = None,
    token: str | None = None,
) -> None:
    """Run the console in this terminal; afterwards stop the services it started. With
    ``server`` it attaches to a running server instead of opening a home (connecting first,
    so a wrong URL or token is one error line, not a console full of failures)."""
    backend = RemoteBackend(server, token) if server else None
    app = make_app(home, read_only=read_only, services=services, backend=backend)
    try:
        app.run()
    finally:
        if services is not None:
            app.services_settled.wait(timeout=120)
            services.stop()
        app.backend.close()
