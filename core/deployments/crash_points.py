"""Named points around every state transition's commit, where a fault-injection test can kill
the process (``NIGHTSCAN_CRASH_AT=deploy:before_commit`` ...) to prove that the invariants hold
after a crash at any of them (tests/core/test_deployment_crashes.py). Unset, a point is one
dictionary lookup."""

from __future__ import annotations

import os
import signal

CRASH_ENV = "NIGHTSCAN_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
