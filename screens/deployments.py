"""Deployments screen (3): list with health and traffic; a live panel refreshing every second;
deploy, roll back, undeploy, health check."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget

from core.lifecycle import TRANSITIONS, ModelStatus
from screens import fmt
from screens.list_detail import ListDetailScreen
from screens.messages import (
    ActionDone,
    DeploymentList,
    DeploymentRow,
    DeploymentsLoaded,
    LiveData,
    LiveSample,
)
from screens.modals.confirm import ConfirmModal
from screens.modals.deploy_form import DeployForm
from screens.widgets.live_panel import WINDOW_S, LivePanel


class DeploymentsScreen(ListDetailScreen):
    MODE = "deployments"
    TITLE_TEXT = "Deployments"
    TABLE_ID = "deployments"
    TABLE_TITLE = "Deployments"
    SPLIT_CLASSES = "live"
    DETAIL_WIDGET = LivePanel
    POLLS = (
        ("deployments-list", 3.0, "load_deployments"),
        ("deployment-live", 1.0, "_load_live_selected"),
    )
    ROW_KEY = "deployment_id"
    MUTATING = frozenset(
        {"deploy", "rollback", "undeploy", "health", "promote", "abort", "pause_canary"}
    )
    CHANGES: ClassVar[dict[str, str]] = {
        "deploy": "deployments.deploy_model",
        "rollback": "deployments.rollback_deployment",
        "undeploy": "deployments.undeploy",
        "health": "deployments.health",
        "promote": "deployments.canaries.promote",
        "abort": "deployments.canaries.abort",
        "pause_canary": "deployments.canaries.pause",
    }
    FILTER_HINT = "/ filter: text, status:running health:unhealthy env:production model:v2"
    FILTER_KEYS: ClassVar[tuple[str, ...]] = ("status", "health", "env", "model")
    DISABLED_HINTS: ClassVar[dict[str, str]] = {
        "rollback": "select a running deployment",
        "undeploy": "select a running deployment",
        "health": "select a running deployment",
        "promote": "select a deployment with a running canary",
        "abort": "select a deployment with a running canary",
        "pause_canary": "select a deployment with a running canary",
    }
    BINDINGS = [
        Binding("d", "deploy", "Deploy", id="deployments.deploy"),
        Binding("b", "rollback", "Roll back", id="deployments.rollback"),
        Binding("u", "undeploy", "Undeploy", id="deployments.undeploy"),
        Binding("h", "health", "Health check", id="deployments.health"),
        Binding("p", "promote", "Promote canary", id="deployments.canary_promote"),
        Binding("a", "abort", "Abort canary", id="deployments.canary_abort"),
        Binding("z", "pause_canary", "Pause/resume canary", id="deployments.canary_pause"),
        Binding("m", "quality", "Model quality", show=False, id="deployments.quality"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.canaries: dict[str, dict[str, Any]] = {}  # deployment id -> running canary

    def compose_detail(self) -> Widget:
        return LivePanel(id="side")

    def action_reload(self) -> None:
        self._signature = ()
        self.load_deployments()

    # ---- workers ---------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="deployments-list")
    def load_deployments(self) -> None:
        manager = self.backend.deployments
        infos = manager.list_deployments(include_stopped=True)
        # Running first; the tracker answers from this process or from persisted snapshots.
        infos.sort(key=lambda i: (i.status != "running", i.deployment_id))
        rows = [
            DeploymentRow(i, manager.performance_tracker.get_current_metrics(i.deployment_id)
             if i.status == "running" else None)
            for i in infos
        ]  # fmt: skip
        canaries = {c["deployment_id"]: c for c in manager.canaries.list_canaries()}
        self.post_if_current(DeploymentsLoaded(DeploymentList(rows, canaries)))

    def _load_live_selected(self) -> None:
        self.load_live(self.selected)

    @work(thread=True, exclusive=True, exit_on_error=False, group="deployment-live")
    def load_live(self, deployment_id: str | None) -> None:
        if deployment_id is None:
            return
        manager = self.backend.deployments
        info = manager.get_deployment(deployment_id)
        tracker = manager.performance_tracker
        metrics = tracker.get_current_metrics(deployment_id)
        history = tracker.history(deployment_id, WINDOW_S)
        canary = manager.canaries.active(deployment_id)
        processes = tracker.by_process(deployment_id)
        self.post_if_current(LiveSample(LiveData(info, metrics, history, canary, processes)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="deployments-write")
    def run_rollback(self, deployment_id: str, reason: str) -> None:
        info = self.backend.deployments.rollback_deployment(deployment_id, reason)
        self.post_message(
            ActionDone(f"{deployment_id} rolled back to {info.model_ref}", deployment_id)
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="deployments-write")
    def run_undeploy(self, deployment_id: str, reason: str) -> None:
        self.backend.deployments.undeploy(deployment_id, reason)
        self.post_message(ActionDone(f"{deployment_id} undeployed", deployment_id))

    @work(thread=True, exclusive=True, exit_on_error=False, group="deployments-write")
    def run_canary(self, deployment_id: str, verb: str, reason: str) -> None:
        canaries = self.backend.deployments.canaries
        if verb == "promote":
            result = canaries.promote(deployment_id, reason)
            text = f"{deployment_id} now serves {result['canary']}"
        elif verb == "abort":
            result = canaries.abort(deployment_id, reason)
            text = f"{deployment_id}: canary aborted, all traffic back to {result['stable']}"
        elif canaries.status(deployment_id)["state"] == "paused":
            canaries.resume(deployment_id)
            text = f"{deployment_id}: canary resumed"
        else:
            canaries.pause(deployment_id)
            text = f"{deployment_id}: canary paused at its current weight"
        self.post_message(ActionDone(text, deployment_id))

    @work(thread=True, exclusive=True, exit_on_error=False, group="deployments-write")
    def run_health(self, deployment_id: str) -> None:
        result = self.backend.deployments.health(deployment_id)
        verdict = "healthy" if result["healthy"] else f"UNHEALTHY: {result.get('detail', '')}"
        latency = f" in {result['latency_ms']:.1f} ms" if "latency_ms" in result else ""
        self.post_message(ActionDone(f"{deployment_id}: {verdict}{latency}", deployment_id))

    # ---- rendering -------------------------------------------------------------------------------

    @on(DeploymentsLoaded)
    def _loaded(self, message: DeploymentsLoaded) -> None:
        self.rows = [(r.info, r.metrics) for r in message.payload.rows]
        self.canaries = message.payload.canaries
        signature = tuple(
            (
                i.deployment_id,
                i.version,
                i.status,
                i.health,
                i.generation,
                str(self.canaries.get(i.deployment_id)),
                round(m.requests_per_second, 1) if m else None,
                round(m.p95_latency_ms, 1) if m else None,
            )
            for i, m in self.rows
        )
        self.repopulate(signature)
        if not self.rows:
            self.query_one(LivePanel).border_title = "Live"
            self.query_one("#live-head").update(  # type: ignore[attr-defined]
                "No deployments. Press d to deploy a version from the registry."
            )
        self.refresh_bindings()

    def populate(self) -> None:
        tier = self.fitted(self.table.size.width or self.size.width)
        columns = [
            "deployment", "model", "env", "status", "health", "traffic", "canary",
            "rps", "p95 ms", "errors", "updated",
        ]  # fmt: skip
        if tier == "narrow":
            columns = ["deployment", "health", "traffic", "rps"]
        elif tier == "medium":
            columns = [c for c in columns if c not in ("env", "updated", "status")]
        self.fill(columns, self._cells)

    def _cells(self, info: Any, m: Any, columns: list[str]) -> list[Any]:
        tones = self.tones
        assert tones is not None
        stopped = info.status != "running"
        cfg = info.config
        # Figures nobody has refreshed for a while (the server stopped) are muted, not current.
        stale = m is not None and fmt.is_stale(m.timestamp, fmt.now())
        muted = tones.style("muted")
        right = lambda s: Text(s, justify="right", style=muted if stale else "")  # noqa: E731
        health = tones.status(info.health) if not stopped else tones.status(info.status)
        if stale and not stopped:
            health = Text(f"{info.health.upper()}?", style=muted)
        values = {
            "deployment": Text(info.deployment_id, style="bold" if not stopped else "dim"),
            "model": Text(info.model_ref),
            "env": Text(info.environment),
            "status": tones.status(info.status),
            "health": health,
            "traffic": right(f"{cfg.traffic_percentage:g}%"),
            "canary": self._canary_cell(info.deployment_id),
            "rps": right(f"{m.requests_per_second:,.1f}" if m else "—"),
            "p95 ms": right(f"{m.p95_latency_ms:,.1f}" if m else "—"),
            "errors": right(f"{m.error_rate:.1f}%" if m else "—"),
            "updated": Text(fmt.when(info.updated_at)),
        }
        return [values[c] for c in columns]

    def _canary_cell(self, deployment_id: str) -> Text:
        canary = self.canaries.get(deployment_id)
        if canary is None:
            return Text("—")
        assert self.tones is not None
        version = canary["canary"].rpartition(":")[2]
        tone = "warn" if canary["state"] == "paused" else "accent"
        return Text(f"{version} {canary['weight']:g}%", style=self.tones.style(tone, bold=True))

    def _matches(self, info: Any) -> bool:
        if not self.filter:
            return True
        values = {
            "status": info.status,
            "health": info.health,
            "env": info.environment,
            "model": info.model_ref,
        }
        hay = " ".join(
            [info.deployment_id, info.model_ref, info.environment, info.status, info.health]
        )
        return self.filter.matches(values, hay)

    def column_tier(self, width: int) -> object:
        return "narrow" if width < 100 else "medium" if width < 160 else "full"

    @on(LiveSample)
    def _live(self, message: LiveSample) -> None:
        payload = message.payload
        if payload.info.deployment_id != self.selected or self.tones is None:
            return
        self.query_one(LivePanel).show(
            payload.info,
            payload.metrics,
            payload.history,
            fmt.now_ts(),
            self.tones,
            canary=payload.canary,
            processes=payload.processes,
        )

    def after_action(self) -> None:
        self.load_live(self.selected)

    # ---- events ----------------------------------------------------------------------------------

    def load_selection(self, key: str) -> None:
        self.load_live(key)

    # ---- actions ---------------------------------------------------------------------------------

    def action_state(self, action: str) -> bool | None:
        if action in ("rollback", "undeploy", "health"):
            info = self._selected_info()
            return True if info is not None and info.status == "running" else None
        if action in ("promote", "abort", "pause_canary"):
            # Hidden unless a canary runs here: most deployments never have one.
            return self.selected in self.canaries
        return True

    def action_quality(self) -> None:
        if self.selected:
            from screens.quality import QualityScreen

            self.app.push_screen(QualityScreen(self.selected))

    def action_deploy(self) -> None:
        if self.writable("deploying"):
            self.open_deploy_form(self._selected_info())

    @work(thread=True, exclusive=True, exit_on_error=False, group="deploy-form")
    def open_deploy_form(self, info: Any) -> None:
        # The registry is read when the form opens, not on every poll: it may be large.
        deployable = [
            m.ref
            for m in self.backend.registry.list_models()
            if m.status is ModelStatus.DEPLOYED or ModelStatus.DEPLOYED in TRANSITIONS[m.status]
        ]
        self.app.call_from_thread(self._show_deploy_form, deployable, info)

    def _show_deploy_form(self, deployable: list[str], info: Any) -> None:
        if not self.is_current or not self.writable("deploying"):
            return
        if not deployable:
            self.notify(
                "no deployable version (VALIDATION, TESTING or RETIRED)", severity="warning"
            )
            return
        running = info is not None and info.status == "running"
        self.app.push_screen(
            DeployForm(
                deployable,
                deployment_id=info.deployment_id if running else "",
                serving=info.model_ref if running else None,
            ),
            self._deployed,
        )

    def _deployed(self, deployment_id: str | None) -> None:
        if deployment_id:
            self.post_message(ActionDone(f"deployed as {deployment_id}", deployment_id))

    def action_rollback(self) -> None:
        info = self._selected_info()
        if not self.writable("rollbacks") or info is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Roll back {info.deployment_id}?",
                f"{info.model_ref} stops serving; the last version that served this deployment "
                "healthily takes over (queued requests finish on the current one).",
                confirm_label="Roll back",
                reason="manual rollback from the console",
                danger=True,
            ),
            partial(self._confirmed, self.run_rollback, info.deployment_id, "rolling back"),
        )

    def action_undeploy(self) -> None:
        info = self._selected_info()
        if not self.writable("undeploying") or info is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Undeploy {info.deployment_id}?",
                f"{info.model_ref} stops serving here; the version is RETIRED unless another "
                "deployment still serves it.",
                confirm_label="Undeploy",
                reason="undeployed from the console",
                danger=True,
            ),
            partial(self._confirmed, self.run_undeploy, info.deployment_id, "undeploying"),
        )

    def _confirmed(
        self, run: Callable[..., Any], deployment_id: str, what: str, reason: str | None
    ) -> None:
        if reason is not None and self.writable(what):
            self.notify(f"{what} {deployment_id}…", timeout=3)
            run(deployment_id, reason)

    def action_promote(self) -> None:
        canary = self.canaries.get(self.selected or "")
        if not self.writable("promoting canaries") or canary is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Promote the canary on {self.selected}?",
                f"{canary['canary']} takes all traffic (now {canary['weight']:g}%); "
                f"{canary['stable']} is retired unless served elsewhere.",
                confirm_label="Promote",
                reason="promoted from the console",
            ),
            partial(self._canary_confirmed, "promote", self.selected),
        )

    def action_abort(self) -> None:
        canary = self.canaries.get(self.selected or "")
        if not self.writable("aborting canaries") or canary is None:
            return
        self.app.push_screen(
            ConfirmModal(
                f"Abort the canary on {self.selected}?",
                f"All traffic goes back to {canary['stable']}; {canary['canary']} stops "
                "taking requests.",
                confirm_label="Abort",
                reason="aborted from the console",
                danger=True,
            ),
            partial(self._canary_confirmed, "abort", self.selected),
        )

    def action_pause_canary(self) -> None:
        canary = self.canaries.get(self.selected or "")
        if not self.writable("pausing canaries") or canary is None:
            return
        paused = canary["state"] == "paused"
        self.app.push_screen(
            ConfirmModal(
                f"{'Resume' if paused else 'Pause'} the canary on {self.selected}?",
                "Judging and stepping restart from this weight."
                if paused
                else f"The weight holds at {canary['weight']:g}% and nothing is judged.",
                confirm_label="Resume" if paused else "Pause",
            ),
            partial(self._canary_confirmed, "pause", self.selected),
        )

    def _canary_confirmed(self, verb: str, deployment_id: str, reason: str | None) -> None:
        if reason is not None and self.writable("canary changes"):
            self.run_canary(deployment_id, verb, reason or f"{verb} from the console")

    def action_health(self) -> None:
        info = self._selected_info()
        if not self.writable("health checks") or info is None:
            return
        self.notify(f"probing {info.deployment_id}…", timeout=3)
        self.run_health(info.deployment_id)

    def palette_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        return [
            (
                f"Deployments: watch {info.deployment_id}",
                partial(self._open_id, info.deployment_id),
                f"{info.model_ref} · {info.status}",
            )  # fmt: skip
            for info, _m in self.rows
        ]
