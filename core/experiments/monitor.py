"""The background check: auto-stop and bandit updates on a timer, headless or in the console.

One daemon thread runs ``ABTestManager.check_experiments`` every ``interval`` seconds. A pass
never overlaps the next (the wait starts when a pass ends), and an error in one pass is logged
and reported through ``on_error`` without ending the loop. Several monitors (processes) may run
at once: every stop and reallocation is decided inside a write transaction that re-reads the
experiment, so each happens once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from core.experiments.manager import ABTestManager, get_ab_test_manager, load_statistics
from core.experiments.models import CheckAction

log = logging.getLogger(__name__)


class ExperimentMonitor:
    def __init__(
        self,
        interval: float = 60.0,
        manager: ABTestManager | None = None,
        on_actions: Callable[[list[CheckAction]], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.interval = interval
        self._manager = manager
        self.on_actions = on_actions
        self.on_error = on_error
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def manager(self) -> ABTestManager:
        return self._manager or get_ab_test_manager()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> list[CheckAction]:
        """One pass now, in the caller's thread."""
        actions = self.manager.check_experiments()
        self.passes += 1
        if actions and self.on_actions is not None:
            self.on_actions(actions)
        return actions

    def start(self) -> ExperimentMonitor:
        if self.running:
            return self
        # Every pass analyses: load the statistics here, while the caller starts up, not in
        # the first pass, where the import would hold up the threads that serve requests.
        load_statistics()

        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="nightscan-experiment-monitor", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep watching; the next pass may succeed
                log.exception("experiment check failed")
                if self.on_error is not None:
                    self.on_error(exc)
            self._stop.wait(self.interval)

    def __enter__(self) -> ExperimentMonitor:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
