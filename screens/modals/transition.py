"""Pick a lifecycle target among the transitions the registry allows, with a reason."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from screens.widgets.filter_input import FormInput


class TransitionModal(ModalScreen[tuple[str, str] | None]):
    """Dismisses with (target status, reason) or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="transition.cancel"),
        Binding("ctrl+s", "confirm", "Confirm", id="transition.confirm"),
    ]

    def __init__(self, ref: str, current: str, allowed: list[str]) -> None:
        super().__init__(classes="dialog")
        self.ref = ref
        self.current = current
        self.allowed = allowed

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Move {self.ref}", id="dialog-title")
            yield Label(f"from {self.current.upper()} to:")
            yield OptionList(
                *[Option(s.upper(), id=s) for s in self.allowed], id="targets", compact=True
            )
            yield Label("Reason")
            yield FormInput(placeholder="why (recorded in the audit log)", id="reason")
            with Horizontal(id="dialog-buttons"):
                yield Button("Apply", id="confirm", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        targets = self.query_one("#targets", OptionList)
        targets.highlighted = 0
        targets.focus()

    @on(OptionList.OptionSelected, "#targets")
    def _picked(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#reason")
    def action_confirm(self) -> None:
        targets = self.query_one("#targets", OptionList)
        if targets.highlighted is None:
            self.notify("pick a target status", severity="warning")
            return
        target = targets.get_option_at_index(targets.highlighted).id or ""
        self.dismiss((target, self.query_one("#reason", Input).value.strip()))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
