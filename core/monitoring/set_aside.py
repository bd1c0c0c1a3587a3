"""``nightscan_rows_set_aside_total{writer}``: rows a database refused and a writer set aside
(``data.poison``): the prediction log, the experiment result writer, the performance snapshots.

One counter per process, not per manager: a writer does not know which manager's registry it
reports to, and every ``ServingMetrics`` registry includes this counter. Under
``nightscan serve --workers N`` ($PROMETHEUS_MULTIPROC_DIR) prometheus_client keeps its value in
the shared folder, so the scrape sums every worker's, like the other counters.
"""

from __future__ import annotations

from prometheus_client import Counter

WRITERS = ("prediction_log", "result_writer", "snapshots")

ROWS_SET_ASIDE = Counter(
    "nightscan_rows_set_aside",
    "Rows the database refused, set aside by a writer so that the rest of its batch commits.",
    ["writer"],
    registry=None,  # registered into each ServingMetrics registry
)
for _writer in WRITERS:
    ROWS_SET_ASIDE.labels(_writer)  # every series present from the start, at 0


def count_set_aside(writer: str) -> None:
    """One row set aside by ``writer`` (one of WRITERS)."""
    ROWS_SET_ASIDE.labels(writer).inc()
