"""The console attached to a running server (``nightscan tui --server URL --token T``).

The server is a real ``nightscan serve`` in another process, over a copy of the seeded console
home; this process never opens a home (no core context is built), so everything the screens show
and change travels over HTTP, and each change lands in the server's audit log under the token.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pilot_helpers import row_keys, settle
from textual.widgets import DataTable, Input, Static

from core import context
from core.backend import RemoteBackend
from nightscan_tui.app import make_app
from screens.modals.confirm import ConfirmModal
from screens.modals.help import HelpModal
from screens.modals.transition import TransitionModal
from screens.widgets.nav import NavBar

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
MODEL = "wildlife_detector"
DEPLOYMENT = "wildlife_prod"
EXPERIMENT = "accuracy_test"
DRAFT = "draft_test"
CLI = [sys.executable, "-c", "from nightscan_tui.cli import main; main()"]


@dataclass
class Served:
    url: str
    admin: str
    viewer: str
    operator: str
    http: httpx.Client  # the admin's view of the server, for checking what changed


def _token(home: Path, role: str, name: str) -> str:
    out = subprocess.run(
        [*CLI, "--home", str(home), "token", "create", "--role", role, "--name", name, "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["token"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(console_template: Path, tmp_path: Path) -> Iterator[Served]:
    home = tmp_path / "server-home"
    shutil.copytree(console_template, home)
    admin, viewer = _token(home, "admin", "console-admin"), _token(home, "viewer", "watcher")
    operator = _token(home, "operator", "night-shift")
    url = f"http://127.0.0.1:{_free_port()}"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [*CLI, "serve", "--home", str(home), "--port", url.rsplit(":", 1)[1]],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if http.get("/deployments").json():
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        context._context = None  # this process must not need a home of its own
        yield Served(url, admin, viewer, operator, http)
    finally:
        http.close()
        proc.terminate()
        proc.wait(30)
        log.close()


async def confirm(pilot, reason: str | None = None) -> None:
    modal = pilot.app.screen
    assert isinstance(modal, ConfirmModal)
    if reason is not None:
        modal.query_one("#reason", Input).value = reason
    await pilot.click("#confirm")
    await settle(pilot)


async def test_every_screen_reads_and_changes_the_server(served: Served) -> None:
    app = make_app(cursor_blink=False, backend=RemoteBackend(served.url, served.admin))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.live_label.startswith(f"attached · {served.url}")

        # Registry: the server's versions; a lifecycle move through the dialog.
        table = app.screen.query_one("#versions", DataTable)
        assert row_keys(table) == [
            "owl_detector:v0.1.0",
            f"{MODEL}:v1.0.0",
            f"{MODEL}:v1.1.0",
            f"{MODEL}:v2.0.0",
        ]
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TransitionModal)
        await pilot.press("enter", *"over http", "enter")  # VALIDATION, with a reason
        await settle(pilot)
        assert served.http.get("/models/owl_detector/v0.1.0").json()["status"] == "validation"
        await settle(pilot)
        assert str(table.get_cell("owl_detector:v0.1.0", "status")) == "VALIDATION"

        # Experiments: the seeded statistics arrive; a draft is started and stopped.
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        screen.table.move_cursor(row=row_keys(screen.table).index(EXPERIMENT))
        await settle(pilot)
        analysis = screen.detail.analysis
        assert analysis.variants[0].name == "control" and analysis.variants[0].n["accuracy"] == 490
        screen.table.move_cursor(row=row_keys(screen.table).index(DRAFT))
        await settle(pilot)
        await pilot.press("s")
        await pilot.pause()
        await confirm(pilot)
        assert served.http.get(f"/experiments/{DRAFT}").json()["status"] == "running"
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        await confirm(pilot, "stopped remotely")
        found = served.http.get(f"/experiments/{DRAFT}").json()
        assert found["status"] == "stopped" and found["stop_reason"] == "stopped remotely"

        # Deployments: the live panel's data and a rollback.
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert screen.selected == DEPLOYMENT
        assert str(screen.table.get_cell(DEPLOYMENT, "model")) == f"{MODEL}:v1.1.0"
        await pilot.press("b")
        await pilot.pause()
        await confirm(pilot, "rolled back from afar")
        assert served.http.get(f"/deployments/{DEPLOYMENT}").json()["version"] == "v1.0.0"
        await settle(pilot)
        assert str(screen.table.get_cell(DEPLOYMENT, "model")) == f"{MODEL}:v1.0.0"

        # Events: the server's audit log, with the token as the actor of every change above.
        await pilot.press("4")
        await settle(pilot)
        entries = app.screen.entries
        mine = {e.kind for e in entries if e.type == "audit" and "token:console-admin" in e.message}
        assert {
            "model.status",
            "experiment.running",
            "experiment.stopped",
            "deployment.rollback",
        } <= mine
        assert not [n for n in app._notifications if n.severity == "error"]
    assert context._context is None  # nothing above opened a local home


async def test_a_viewer_token_opens_read_only_and_stays_so(served: Served) -> None:
    app = make_app(cursor_blink=False, backend=RemoteBackend(served.url, served.viewer))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.read_only and "watcher (viewer)" in app.live_label
        await pilot.press("ctrl+r")  # cannot leave read-only with this token
        await pilot.pause()
        assert app.read_only
        await pilot.press("t")
        await pilot.pause()
        assert not isinstance(app.screen, TransitionModal)
        assert any("viewer token" in n.message for n in app._notifications)
        await pilot.press("4")  # the audit log needs a token: a viewer's is enough
        await settle(pilot)
        assert any(e.type == "audit" for e in app.screen.entries)


def _plain(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def test_an_operator_token_sees_admin_actions_disabled_with_the_reason(
    served: Served,
) -> None:
    """Registry status and deletion, deploy and undeploy need an admin: an operator's console
    shows them disabled, says why in help and on the key, and never opens their forms; what an
    operator may do stays available. The header names the server and the role."""
    app = make_app(cursor_blink=False, backend=RemoteBackend(served.url, served.operator))
    reason = "needs an admin token; this one is operator"
    host = served.url.removeprefix("http://")
    async with app.run_test(size=(100, 40)) as pilot:  # too narrow for the long label
        await settle(pilot)
        assert not app.read_only
        header = str(app.screen.query_one(NavBar).content)
        assert f"{host} (operator)" in header and "night-shift" not in header
        screen = app.screen
        assert screen.selected
        assert screen.check_action("transition", ()) is None
        assert screen.check_action("delete", ()) is None
        assert screen.role_refusal("transition") == reason
        assert screen.check_action("tags", ()) is True and screen.role_refusal("tags") is None
        await pilot.press("t")
        await pilot.pause()
        assert not isinstance(app.screen, TransitionModal)
        assert any(reason in n.message for n in app._notifications)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpModal)
        shown = _plain(app.screen.query_one("VerticalScroll > Static", Static).content)
        assert f"Status ({reason})" in shown and f"Delete version ({reason})" in shown
        assert "Edit tags (" not in shown
        await pilot.press("escape")
        await pilot.press("3")
        await settle(pilot)
        deployments = app.screen
        assert deployments.role_refusal("deploy") == deployments.role_refusal("undeploy") == reason
        assert deployments.role_refusal("rollback") is None
        assert deployments.check_action("rollback", ()) is True
    async with make_app(
        cursor_blink=False, backend=RemoteBackend(served.url, served.operator)
    ).run_test(size=(200, 40)) as pilot:
        await settle(pilot)
        header = str(pilot.app.screen.query_one(NavBar).content)
        assert f"attached · {served.url} · night-shift (operator)" in header


async def test_errors_from_the_server_are_notifications(served: Served) -> None:
    """The server refuses (here: a version deleted behind the console's back) and the console
    shows the server's own message instead of failing."""
    app = make_app(cursor_blink=False, backend=RemoteBackend(served.url, served.admin))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        served.http.delete("/models/owl_detector/v0.1.0").raise_for_status()
        assert screen.selected == "owl_detector:v0.1.0"  # the console has not reloaded yet
        screen.apply_transition("owl_detector:v0.1.0", "validation", "too late")
        await settle(pilot)
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors and errors[-1] == "model owl_detector:v0.1.0 is not registered"
        assert app.is_running


def test_an_attached_console_loads_neither_torch_nor_the_server() -> None:
    """A workstation that attaches needs no model runtime: the console, every screen and the
    remote services import without torch, FastAPI or uvicorn."""
    code = (
        "import sys, json\n"
        "import nightscan_tui.app, core.backend, core.remote.services\n"
        "import screens.deployments, screens.experiments, screens.events, screens.registry\n"
        "import screens.modals.deploy_form, screens.modals.experiment_form\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "textual" in loaded and not loaded & {"torch", "fastapi", "uvicorn"}
