"""The statistics (scipy, about a second) load on first use, not with the experiment manager,
so `experiment list` stays quick; and a serving process loads them in the thread that builds the
server, before its background threads (alerts, canary judge, experiment monitor) start: scipy's
import breaks when two threads run it at once (a partially initialised module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CODE = """
import sys, threading
import core.experiments
assert "scipy" not in sys.modules, "the manager imported scipy eagerly"
from core.server.runner import make_server
make_server(port=0)  # what `nightscan serve`, the demo and the console's server all call
assert threading.active_count() == 1, "threads started before the statistics were loaded"
stats = sys.modules["scipy.stats"]
print(stats.norm.cdf(0.0), "core.experiments.analysis" in sys.modules)
"""


def test_a_server_loads_the_statistics_before_any_thread_needs_them(tmp_path: Path) -> None:
    env = {**os.environ, "NIGHTSCAN_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.5", "True"]
