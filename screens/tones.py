"""Theme-aware colours for Rich renderables (tables, detail panes).

Rich cannot read Textual's CSS variables, so the panes ask the running app for the current
theme's colours and re-render when the theme changes; nothing is hard-coded to one palette.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.color import Color as RichColor
from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.color import Color, ColorParseError

from core.formatting import STATUS_TONE  # noqa: F401  (shared with the CLI)


def _rich(value: str | None, fallback: str) -> RichColor | None:
    """A theme value (``#4EBF71``, ``ansi_green``, ``ansi_default 50%``) as a Rich colour;
    None (the terminal's default) where it has no fixed colour."""
    try:
        color = Color.parse((value or fallback).split()[0])
    except ColorParseError:
        color = Color.parse(fallback)
    if color.ansi == -1:  # ansi_default: let the terminal decide
        return None
    return color.rich_color


def _muted(v: dict[str, str]) -> RichColor | None:
    """Foreground half-way to the background (the theme's own "muted" is a CSS alpha)."""
    try:
        fg, bg = Color.parse(v.get("foreground", "")), Color.parse(v.get("background", ""))
    except ColorParseError:
        return None
    if fg.ansi is not None or bg.ansi is not None:
        return None
    return fg.blend(bg, 0.45).rich_color


@dataclass(frozen=True)
class Tones:
    good: RichColor | None
    bad: RichColor | None
    warn: RichColor | None
    primary: RichColor | None
    accent: RichColor | None
    muted: RichColor | None

    @classmethod
    def of(cls, app: App) -> Tones:
        v = app.theme_variables or app.get_css_variables()
        return cls(
            good=_rich(v.get("success"), "green"),
            bad=_rich(v.get("error"), "red"),
            warn=_rich(v.get("warning"), "yellow"),
            primary=_rich(v.get("primary"), "blue"),
            accent=_rich(v.get("accent"), "magenta"),
            muted=_muted(v),
        )

    def style(self, tone: str, bold: bool = False) -> Style:
        color = getattr(self, tone, None)
        # ``dim`` stands in for a muted colour on themes that leave it to the terminal.
        dim = tone == "muted" and color is None
        return Style(color=color, bold=bold or None, dim=dim or None)

    def status(self, status: str, upper: bool = True) -> Text:
        tone = STATUS_TONE.get(status.lower(), "")
        label = status.upper() if upper else status
        return Text(label, style=self.style(tone, bold=tone in ("good", "bad")) if tone else "")

    def direction(self, improvement: float | None, text: str) -> Text:
        """Green when the change is an improvement, red when it is a regression."""
        if improvement is None or improvement == 0:
            return Text(text, style=self.style("muted"))
        return Text(text, style=self.style("good" if improvement > 0 else "bad"))
