"""What ``nightscan tui --serve`` runs inside the console's process: the inference endpoint,
whose app (``core.server.app.create_app``) runs the deployments' serving loop (reconcile, health
checks, canary steps, snapshots) and the experiment monitor (auto-stop, bandit reallocation),
each in a background thread.

``core.demo.DemoServices`` is this plus the demo's traffic and director (and a monitor of its
own that wakes the director). Threads, who owns them:

- ``http-server`` (``BackgroundServer``): uvicorn; its lifespan starts and stops the serving loop
  and the monitor and, on shutdown, drains queued requests and writes what they were counted as
  (the last metrics snapshot, predictions, canary tallies);
- ``server-announce``: records the server in the home, so the CLI asks it (``deployment health``).

``stop()`` ends the server after it drained: nothing counted is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any


class ServingServices:
    kind = "serving"  # the console's header: "serving · URL"

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        monitor_interval_s: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.monitor_interval_s = monitor_interval_s
        self.server: Any = None
        self.monitor: Any = None
        self._notices: deque[tuple[str, str]] = deque(maxlen=50)

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""

    @property
    def bound_port(self) -> int | None:
        """The port it listens on (the real one when asked for port 0)."""
        return int(self.url.rsplit(":", 1)[1]) if self.url else None

    def start(self) -> ServingServices:
        self.start_server()  # its lifespan runs the serving loop and the experiment monitor
        return self

    def start_server(self) -> None:
        from core.server.runner import BackgroundServer

        # announce: `nightscan deployment health` in another terminal asks this server.
        self.server = BackgroundServer(host=self.host, port=self.port, announce=True).start()

    def start_monitor(self, on_actions: Callable[[list[Any]], None]) -> None:
        from core.experiments import ExperimentMonitor

        self.monitor = ExperimentMonitor(
            interval=self.monitor_interval_s, on_actions=on_actions
        ).start()

    def notify(self, message: str, severity: str) -> None:
        self._notices.append((message, severity))

    def notices(self) -> list[tuple[str, str]]:
        """(message, severity) said since the last call, oldest first."""
        said = []
        while self._notices:
            said.append(self._notices.popleft())
        return said

    def stop(self) -> None:
        """A monitor of a subclass, then the server (which drains and writes what it counted)."""
        for service in (self.monitor, self.server):
            if service is not None:
                service.stop()
