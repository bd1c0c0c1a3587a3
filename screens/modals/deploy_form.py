"""Deploy a registered version: it is verified, loaded, warmed up and probed before traffic
moves, which takes a few seconds, so the form runs the deploy in a worker and waits."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from screens.base import describe_error
from screens.widgets.filter_input import FormInput
from screens.widgets.plain_checkbox import PlainCheckbox


def newest_other(refs: list[str], serving: str | None) -> str | None:
    """The newest version of the served model that is not the served one (refs are in
    registry order: model id, then semantic version)."""
    if not refs:
        return None
    if serving is None:
        return refs[-1]
    model_id = serving.rpartition(":")[0]
    same = [r for r in refs if r.rpartition(":")[0] == model_id and r != serving]
    return same[-1] if same else refs[-1]


class DeployForm(ModalScreen[str | None]):
    """Dismisses with the deployment id, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="deploy_form.cancel"),
        Binding("ctrl+s", "deploy", "Deploy", id="deploy_form.deploy"),
    ]

    def __init__(
        self, model_refs: list[str], deployment_id: str = "", serving: str | None = None
    ) -> None:
        """Opened on a deployment: its id, and the newest other version of what it serves."""
        super().__init__(classes="dialog")
        self.model_refs = model_refs
        self.deployment_id = deployment_id
        self.preselect = newest_other(model_refs, serving)

    def compose(self) -> ComposeResult:
        default = self.preselect or (self.model_refs[-1] if self.model_refs else Select.BLANK)
        with Vertical(id="dialog", classes="form"):
            yield Label("Deploy a model version", id="dialog-title")
            with Grid(id="form-grid"):
                yield Label("version")
                yield Select(
                    [(ref, ref) for ref in self.model_refs],
                    value=default,
                    id="version",
                    compact=True,
                )
                yield Label("deployment")
                yield FormInput(
                    value=self.deployment_id,
                    placeholder="existing id to replace, or empty for a new one",
                    id="deployment_id",
                )
                yield Label("environment")
                yield FormInput(value="production", id="environment")
                yield Label("traffic %")
                yield FormInput(value="100", id="traffic", type="number")
                yield Label("")
                yield PlainCheckbox(
                    "as a canary beside what serves now (traffic % = first weight)",
                    id="canary",
                    compact=True,
                )
            yield Static(
                "Checksum, load, warm-up and a health probe run first; if any fails, what "
                "serves now keeps serving.",
                classes="dialog-hint",
            )
            yield Static("", id="form-error", classes="form-error", markup=False)
            with Horizontal(id="dialog-buttons"):
                yield Button("Deploy", id="deploy", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#version", Select).focus()

    @on(Button.Pressed, "#deploy")
    def action_deploy(self) -> None:
        from core.deployments import DeploymentConfig

        error = self.query_one("#form-error", Static)
        version = self.query_one("#version", Select).value
        if version is Select.BLANK:
            error.update("pick a version")
            return
        model_id, _, ver = str(version).rpartition(":")
        try:
            traffic = float(self.query_one("#traffic", Input).value or "100")
        except ValueError:
            error.update("traffic % must be a number")
            return
        config = DeploymentConfig(
            model_id=model_id,
            version=ver,
            deployment_id=self.query_one("#deployment_id", Input).value.strip(),
            environment=self.query_one("#environment", Input).value.strip() or "production",
            traffic_percentage=traffic,
            canary_deployment=self.query_one("#canary", Checkbox).value,
        )
        error.update(f"deploying {version}: verifying, loading, warming up…")
        self.query_one("#deploy", Button).disabled = True
        self.deploy(config)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy")
    def deploy(self, config: object) -> str:
        self.app.backend.deployments.deploy_model(config)  # type: ignore[attr-defined]
        return config.deployment_id  # type: ignore[attr-defined]

    @on(Worker.StateChanged)
    def _deployed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "deploy":
            return
        if event.worker.state is WorkerState.SUCCESS:
            self.dismiss(event.worker.result)
        elif event.worker.state is WorkerState.ERROR:
            self.query_one("#deploy", Button).disabled = False
            self.query_one("#form-error", Static).update(describe_error(event.worker.error))

    @on(Checkbox.Changed, "#canary")
    def _canary_toggled(self, event: Checkbox.Changed) -> None:
        traffic = self.query_one("#traffic", Input)
        if event.value and traffic.value in ("", "100"):
            traffic.value = "5"
        elif not event.value and traffic.value == "5":
            traffic.value = "100"

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
