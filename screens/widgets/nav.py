"""The top bar: product name, the four screens (number keys or click), read-only and live state."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

SCREENS = (
    ("registry", "1", "Registry"),
    ("experiments", "2", "Experiments"),
    ("deployments", "3", "Deployments"),
    ("events", "4", "Events"),
)


class NavBar(Static):
    """Re-rendered by the screen on resume and whenever the app's state changes."""

    DEFAULT_CSS = """
    NavBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, mode: str) -> None:
        super().__init__(id="nav")
        self.mode = mode

    def on_mount(self) -> None:
        self.refresh_state()

    def on_resize(self) -> None:
        self.refresh_state()

    def refresh_state(self) -> None:
        app = self.app
        narrow = 0 < self.size.width < 100
        name = " NightScan " if narrow else " NightScan Ops "
        parts: list[Content | str] = [Content.from_markup(f"[b $primary]{name}[/] ")]
        for mode, key, label in SCREENS:
            if mode == self.mode:
                parts.append(Content.from_markup(f"[b reverse $accent] {key} {label} [/]"))
            else:
                parts.append(
                    Content.from_markup(
                        f"[@click=app.switch_mode('{mode}')] [$accent]{key}[/] {label} [/]"
                    )
                )
        if getattr(app, "read_only", False):
            parts.append(Content.from_markup("  [b $warning reverse] READ-ONLY [/]"))
        live = getattr(app, "live_label", "")
        used = sum(len(p) for p in parts)
        if live:
            # Too long for this width: the short form still names the server (and the role).
            short = getattr(app, "live_short", "") or live.split()[0]
            room = self.size.width - used - 4
            shown = live if len(live) <= room or not self.size.width else short
            parts.append(Content.from_markup("  [$success]●[/] ") + Content(shown))
        self.update(Content("").join(parts))
