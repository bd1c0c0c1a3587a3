"""Create an experiment: id, name, control and treatment from the registry, split, metrics.

The form runs the create itself (in a worker) so that core's validation problems appear in
the form, one per line, and the user can fix them without retyping everything.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from screens.base import describe_error
from screens.widgets.filter_input import FormInput
from screens.widgets.plain_checkbox import PlainCheckbox

DEFAULT_METRICS = "accuracy, confidence, inference_time"
MODES = ("fixed", "thompson_sampling", "epsilon_greedy")


def default_pair(models: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """Control: what is in production; treatment: the newest other version of that model."""
    if not models:
        return None, None
    deployed = [ref for ref, status in models if status == "deployed"]
    control = deployed[0] if deployed else models[0][0]
    model_id = control.rpartition(":")[0]
    others = [ref for ref, _s in models if ref != control and ref.rpartition(":")[0] == model_id]
    others = others or [ref for ref, _s in models if ref != control]
    return control, (others[-1] if others else None)


class ExperimentForm(ModalScreen[str | None]):
    """Dismisses with the new experiment's id, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="experiment_form.cancel"),
        Binding("ctrl+s", "create", "Create", id="experiment_form.create"),
    ]

    def __init__(self, models: list[tuple[str, str]]) -> None:
        """``models``: (MODEL_ID:VERSION, status) of every usable version, in registry order."""
        super().__init__(classes="dialog")
        self.model_refs = [ref for ref, _status in models]
        self.control, self.treatment = default_pair(models)

    def compose(self) -> ComposeResult:
        options = [(ref, ref) for ref in self.model_refs]
        control = self.control or Select.BLANK
        treatment = self.treatment or Select.BLANK
        with Vertical(id="dialog", classes="form"):
            yield Label("New experiment", id="dialog-title")
            with VerticalScroll(id="form-fields"):
                with Grid(id="form-grid"):
                    yield Label("id")
                    yield FormInput(placeholder="e.g. v2_1_rollout", id="experiment_id")
                    yield Label("name")
                    yield FormInput(placeholder="optional", id="name")
                    yield Label("control")
                    yield Select(options, value=control, id="control", compact=True)
                    yield Label("treatment")
                    yield Select(options, value=treatment, id="treatment", compact=True)
                    yield Label("control %")
                    yield FormInput(value="50", id="split", type="number")
                    yield Label("metrics")
                    yield FormInput(value=DEFAULT_METRICS, id="metrics")
                    yield Label("min units")
                    yield FormInput(value="1000", id="minimum", type="integer")
                    yield Label("allocation")
                    yield Select([(m, m) for m in MODES], value="fixed", id="mode", compact=True)
                    yield Label("")
                    yield PlainCheckbox("start it now", id="start", compact=True)
                yield Static("", id="form-error", classes="form-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("Create", id="create", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#experiment_id", Input).focus()

    def _value(self, selector: str) -> str:
        widget = self.query_one(selector)
        if isinstance(widget, Select):
            return "" if widget.value is Select.BLANK else str(widget.value)
        return widget.value.strip()  # type: ignore[attr-defined]

    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        from core.experiments import ExperimentConfig

        error = self.query_one("#form-error", Static)
        try:
            control_share = float(self._value("#split") or "nan")
            minimum = int(self._value("#minimum") or "0")
        except ValueError:
            error.update("control % must be a number and min units a whole number")
            return
        metrics = [m.strip() for m in self._value("#metrics").split(",") if m.strip()]
        config = ExperimentConfig(
            experiment_id=self._value("#experiment_id"),
            name=self._value("#name"),
            model_variants={
                "control": self._value("#control"),
                "treatment": self._value("#treatment"),
            },
            traffic_allocation={"control": control_share, "treatment": 100.0 - control_share},
            success_metrics=metrics,
            minimum_sample_size=minimum,
            allocation_mode=self._value("#mode") or "fixed",
        )
        error.update("creating…")
        self.create(config, self.query_one("#start", Checkbox).value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiment-create")
    def create(self, config: object, start: bool) -> str:
        manager = self.app.backend.experiments  # type: ignore[attr-defined]
        info = manager.create_experiment(config)  # type: ignore[arg-type]
        if start:
            manager.start_experiment(info.experiment_id)
        return info.experiment_id

    @on(Worker.StateChanged)
    def _created(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "experiment-create":
            return
        if event.worker.state is WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.worker.state is WorkerState.ERROR:
            error = event.worker.error
            problems = getattr(error, "problems", None)
            text = "\n".join(f"• {p}" for p in problems) if problems else describe_error(error)
            self.query_one("#form-error", Static).update(text)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
