"""A confirmation for destructive or state-changing actions, optionally asking for a reason."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from screens.widgets.filter_input import FormInput


class ConfirmModal(ModalScreen[str | None]):
    """Dismisses with the reason ("" when none was asked) or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("ctrl+s", "confirm", "Confirm", id="confirm.confirm"),
    ]

    def __init__(
        self,
        title: str,
        body: str,
        confirm_label: str = "Confirm",
        reason: str | None = None,
        danger: bool = False,
        field_label: str = "Reason",
    ) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label
        self.reason = reason
        self.danger = danger
        self.field_label = field_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body", markup=False)
            if self.reason is not None:
                yield Label(self.field_label)
                yield FormInput(value=self.reason, id="reason")
            with Horizontal(id="dialog-buttons"):
                yield Button(
                    self.confirm_label,
                    id="confirm",
                    variant="error" if self.danger else "primary",
                )
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self.reason is not None:
            self.query_one("#reason", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#reason")
    def action_confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip() if self.reason is not None else ""
        self.dismiss(reason)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
