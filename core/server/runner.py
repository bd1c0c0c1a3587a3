"""Run the app under uvicorn: in the foreground (``nightscan serve``) or in a background thread
(the console, tests)."""

from __future__ import annotations

import ipaddress
import threading
import time

import uvicorn

from core.errors import ConflictError, ValidationError

INSECURE_FLAG = "--insecure-open-predict"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def make_server(
    host: str = "127.0.0.1", port: int = 8000, app=None, *, insecure_open_predict: bool = False
) -> uvicorn.Server:
    """A server for ``app`` (default: ``create_app()``). Beyond loopback, /predict and
    /feedback need a token: the default app is built so, and a given app that does not is
    refused, unless ``insecure_open_predict`` (the CLI's loudly named flag) says otherwise."""
    from core.server.app import create_app

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
        log_level="warning",
        timeout_graceful_shutdown=30,  # in-flight requests finish
        access_log=False,
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """uvicorn in a daemon thread; ``start()`` returns once the socket accepts connections."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        app=None,
        *,
        insecure_open_predict: bool = False,
    ) -> None:
        self.server = make_server(host, port, app, insecure_open_predict=insecure_open_predict)
        self.thread = threading.Thread(target=self.server.run, name="http-server", daemon=True)
        self._url = ""

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
        cfg = self.server.config
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self._url = f"http://{cfg.host}:{port}"
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
