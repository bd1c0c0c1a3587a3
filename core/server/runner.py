"""Run the app under uvicorn: in the foreground (``nightscan serve``) or in a background thread
(the console, tests)."""

from __future__ import annotations

import ipaddress
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from core.errors import ConflictError, ValidationError

INSECURE_FLAG = "--insecure-open-predict"

if TYPE_CHECKING:
    from core.server.presence import ServerPresence


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def make_server(
    host: str = "127.0.0.1",
    port: int = 8000,
    app=None,
    *,
    insecure_open_predict: bool = False,
    access_log: bool = False,
    log_level: str = "warning",
) -> uvicorn.Server:
    """uvicorn over ``app`` (default: ``create_app()``). Beyond loopback, /predict and
    /feedback need a token: the default app is built so, and a given app that does not is
    refused, unless ``insecure_open_predict`` (the CLI's loudly named flag) says otherwise.
    ``access_log`` prints one line per request (``nightscan serve`` does; the console and tests
    do not, their terminal is not a log). uvicorn sets up its loggers when the config is built,
    so both are arguments here, not attributes to set later."""
    from core.experiments.manager import load_statistics
    from core.server.app import create_app

    # The app's background threads (alerts, canary judge, experiment monitor) analyse: their
    # first scipy import must not run in two threads at once, so it happens here, in this one.
    load_statistics()

    exposed = not is_loopback(host) and not insecure_open_predict
    if app is None:
        app = create_app(require_predict_token=True if exposed else None)
    elif exposed and not getattr(getattr(app, "state", None), "require_predict_token", True):
        raise ValidationError(
            f"binding to {host} (beyond loopback) requires tokens on /predict and /feedback; "
            f"create the app with require_predict_token=True, or pass {INSECURE_FLAG}"
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info" if access_log else log_level,
        timeout_graceful_shutdown=30,  # in-flight requests finish
        access_log=access_log,
    )
    return uvicorn.Server(config)


def bound_url(server: uvicorn.Server) -> str:
    """Where a client on this machine reaches a started server (the real port for port 0)."""
    host = server.config.host
    if host in ("0.0.0.0", "::", ""):  # every interface: loopback is one of them
        host = "127.0.0.1"
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://{host}:{port}"


def announce_when_started(server: uvicorn.Server, db) -> ServerPresence:
    """Record the server in the home's database once its socket accepts connections (so a CLI
    that finds the row can connect at once); the caller stops the returned presence."""
    from core.server.presence import ServerPresence

    presence = ServerPresence(db, "")

    def wait_then_announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        presence.url = bound_url(server)
        presence.start()

    threading.Thread(target=wait_then_announce, name="server-announce", daemon=True).start()
    return presence


# What the first deployment a serving process loads needs (torch above all: ~1-2 s to import).
INFERENCE_MODULES = (
    "torch",
    "inference.runtime",
    "inference.model_cache",
    "inference.architectures",
)


def preload_inference_when_started(server: uvicorn.Server) -> threading.Thread:
    """Import the inference stack in the background once the server accepts connections, so
    the first deploy is served within a reconcile tick instead of after the imports (measured
    in the multi-host test: 6 workers importing torch at once on 2 cores took ~4 s)."""
    import importlib

    def preload() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        for name in INFERENCE_MODULES:
            if server.should_exit:
                return
            try:
                importlib.import_module(name)
            except Exception:  # the deploy that needs it will say why
                return

    thread = threading.Thread(target=preload, name="inference-preload", daemon=True)
    thread.start()
    return thread


class BackgroundServer:
    """uvicorn in a daemon thread; ``start()`` returns once the socket accepts connections.
    With ``announce``, the home's database records it while it runs (see ``presence``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        app=None,
        *,
        announce: bool = False,
        insecure_open_predict: bool = False,
    ) -> None:
        self.server = make_server(host, port, app, insecure_open_predict=insecure_open_predict)
        self.thread = threading.Thread(target=self.server.run, name="http-server", daemon=True)
        self._url = ""
        self._announce = announce
        self._presence: ServerPresence | None = None

    @property
    def url(self) -> str:
        """The address it listens on (the real port when started with port 0)."""
        return self._url

    def start(self, timeout_s: float = 30.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise ConflictError(
                    f"the server could not start on {self.server.config.host}:"
                    f"{self.server.config.port} (port in use?)"
                )
            if time.monotonic() > deadline:
                raise ConflictError("the server did not start in time")
            time.sleep(0.02)
        self._url = bound_url(self.server)
        if self._announce:
            from core.context import get_context
            from core.server.presence import ServerPresence

            self._presence = ServerPresence(get_context().db, self._url).start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._presence is not None:
            self._presence.stop()  # first: no CLI should pick a server that is draining
            self._presence = None
        self.server.should_exit = True
        self.thread.join(timeout_s)
