"""What ``nightscan serve`` says while it runs, besides uvicorn's access log: one line per
reconcile (this process starts or stops serving a version) and one per event (canary steps,
rollbacks, alerts, auto-stops), read from the event table after it commits, so a line is never
printed for a change that was rolled back.

The line formats are pure functions; ``ServeLog`` is the loop that feeds them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from core.events import Event, recent_events

log = logging.getLogger(__name__)

POLL_S = 1.0


def reconcile_lines(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Lines for what changed in ``{deployment id: model ref served here}``."""
    lines = []
    for dep in sorted(set(before) | set(after)):
        old, new = before.get(dep), after.get(dep)
        if old == new:
            continue
        if new is None:
            lines.append(f"reconcile  {dep}: stopped serving {old}")
        elif old is None:
            lines.append(f"reconcile  {dep}: serving {new}")
        else:
            lines.append(f"reconcile  {dep}: {old} -> {new}")
    return lines


def event_line(event: Event) -> str:
    where = f" [{event.source}]" if event.source else ""
    return f"event      {event.severity:<8} {event.kind}{where}: {event.message}"


def served_here(manager) -> dict[str, str]:
    """``{deployment id: what this process serves for it}``, a canary included."""
    return {
        dep_id: dep.model_ref + (f" + canary {dep.canary.model.model_ref}" if dep.canary else "")
        for dep_id, dep in manager.served_deployments().items()
    }


class ServeLog:
    """Polls what this process serves and the event table; hands each new line to ``emit``."""

    def __init__(
        self,
        served: Callable[[], Mapping[str, str]],
        emit: Callable[[str], None],
        interval_s: float = POLL_S,
        *,
        events: bool = True,
    ) -> None:
        self._served = served
        self._events = events  # a worker of ``serve --workers`` leaves them to its parent
        self._emit = emit
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_event = 0
        self._serving: dict[str, str] = {}

    def start(self) -> ServeLog:
        latest = recent_events(limit=1)
        self._last_event = latest[0].id if latest else 0  # history is `nightscan events`' job
        self._thread = threading.Thread(target=self._run, name="serve-log", daemon=True)
        self._thread.start()
        return self

    def poll(self) -> None:
        """One pass (the loop's body; tests call it directly)."""
        now = dict(self._served())
        for line in reconcile_lines(self._serving, now):
            self._emit(line)
        self._serving = now
        if not self._events:
            return
        for event in recent_events(after_id=self._last_event, limit=500):
            self._emit(event_line(event))
            self._last_event = max(self._last_event, event.id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:  # a busy database: the next pass catches up
                log.warning("serve log poll failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval_s + 5)
            self._thread = None
        try:
            self.poll()  # what happened while shutting down (the last undeploy, say)
        except Exception:
            pass
