"""Model quality of one deployment (``m`` on the deployments screen): per version, the
confusion heat map, per-class bars and the calibration curve. ``w`` cycles the window,
``v`` the version, Esc goes back."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

from screens.messages import Loaded
from screens.panels.quality_panel import render_group

WINDOWS = ("all", "24h", "1h")


class QualityLoaded(Loaded["dict[str, Any]"]):
    """The quality report dict of the shown deployment."""


class QualityScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="quality.back"),
        Binding("w", "next_window", "Window", id="quality.window"),
        Binding("v", "next_version", "Version", id="quality.version"),
        Binding("f5", "reload", "Reload", show=False, id="quality.reload"),
    ]

    def __init__(self, deployment_id: str) -> None:
        super().__init__()
        self.deployment_id = deployment_id
        self.window = WINDOWS[0]
        self.version_index = 0
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Label("", id="quality-title")
        with VerticalScroll(id="quality-body"):
            yield Static("loading…", id="quality-panel")

    def on_mount(self) -> None:
        self.load_quality()

    @work(thread=True, exclusive=True, exit_on_error=False, group="quality")
    def load_quality(self) -> None:
        report = self.app.backend.quality(self.deployment_id, window=self.window)  # type: ignore[attr-defined]
        self.post_message(QualityLoaded(report))

    @on(QualityLoaded)
    def _loaded(self, message: QualityLoaded) -> None:
        self.report = message.payload
        self._show_report()

    def on_worker_state_changed(self, event) -> None:
        if event.worker.group == "quality" and event.worker.error is not None:
            from screens.base import describe_error

            self.notify(describe_error(event.worker.error), severity="error")

    def _show_report(self) -> None:
        groups = (self.report or {}).get("groups", [])
        title = f"Quality · {self.deployment_id} · window {self.window}"
        panel = self.query_one("#quality-panel", Static)
        if not groups:
            self.query_one("#quality-title", Label).update(title)
            panel.update("no predictions with this window yet; feedback (/feedback) fills it")
            return
        self.version_index %= len(groups)
        group = groups[self.version_index]
        self.query_one("#quality-title", Label).update(
            f"{title} · version {self.version_index + 1}/{len(groups)}: {group['group']}"
            "   (w window, v version, esc back)"
        )
        panel.update(render_group(group))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_reload(self) -> None:
        self.load_quality()

    def action_next_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)]
        self.load_quality()

    def action_next_version(self) -> None:
        self.version_index += 1
        self._show_report()
