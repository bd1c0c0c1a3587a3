"""No poison rows: a row the database refuses is set aside (counted, an event) and the rest of
its batch commits, in the prediction log, the experiment result writer and the performance
snapshots, on SQLite and PostgreSQL. Was: one NUL or over-long id failed the prediction log's
batch on PostgreSQL forever, and every later /feedback answered 500."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from test_experiments_support import config_dict, register_models

from core.events import recent_events
from core.monitoring.metrics import ServingMetrics
from data.poison import commit_isolating


def set_aside_total(writer: str) -> float:
    """``nightscan_rows_set_aside_total{writer}`` as /metrics renders it (a manager's registry)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = ServingMetrics().render()[0].decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "nightscan_rows_set_aside_total" and sample.labels == {
                "writer": writer
            }:
                return sample.value
    raise AssertionError(f"no nightscan_rows_set_aside_total for {writer}")


def test_commit_isolating_commits_all_but_the_refused_rows() -> None:
    committed: list[int] = []
    poison = {3, 7, 8}

    def commit(start: int, stop: int) -> None:
        if poison & set(range(start, stop)):
            raise IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed"))
        committed.extend(range(start, stop))

    refused = commit_isolating(10, commit)
    assert [i for i, _ in refused] == [3, 7, 8]
    assert sorted(committed) == [0, 1, 2, 4, 5, 6, 9]
    assert commit_isolating(0, commit) == []


def test_commit_isolating_leaves_transient_errors_to_the_caller() -> None:
    def commit(start: int, stop: int) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with pytest.raises(OperationalError):
        commit_isolating(4, commit)


def _poison_ids(ctx) -> list[str]:
    """Request ids this backend refuses: none on SQLite (it stores NUL and ignores widths)."""
    return [] if ctx.db.is_sqlite else ["x\x00y", "z" * 201]


def test_prediction_log_sets_aside_what_the_database_refuses(ctx) -> None:
    from core.deployments.prediction_log import Prediction, PredictionLog

    log = PredictionLog(ctx.db)

    def prediction(request_id: str, predicted: str | None = "owl") -> Prediction:
        return Prediction(request_id, "dep", "m:v1", ("owl", "hawk"), predicted)  # type: ignore[arg-type]

    bad = [prediction("no-class", None)] + [prediction(r) for r in _poison_ids(ctx)]
    good = [prediction(f"ok-{i}") for i in range(5)]
    before = set_aside_total("prediction_log")
    for p in good[:2] + bad + good[2:]:
        log.remember(p)
    assert log.flush() == len(good)
    assert log.set_aside == len(bad)
    assert set_aside_total("prediction_log") == before + len(bad)
    assert log.flush() == 0  # nothing put back to fail again
    log.remember(prediction("later"))
    assert log.flush() == 1
    fresh = PredictionLog(ctx.db)  # another process: reads the table
    assert all(fresh.find(p.request_id) is not None for p in [*good, prediction("later")])
    assert fresh.find("no-class") is None
    assert log.claim("later", True) == (True, True)  # feedback keeps working
    events = recent_events(kind="prediction_log.row_set_aside", limit=10)
    assert len(events) == len(bad) and all(e.severity == "warning" for e in events)
    log.close()


def test_result_writer_sets_aside_refused_items_and_commits_the_rest(ctx) -> None:
    from core import get_ab_test_manager
    from core.experiments.results import ResultItem

    register_models()
    ab = get_ab_test_manager()
    ab.create_experiment(config_dict("poison"))
    ab.start_experiment("poison")
    poison = [ResultItem("poison", "nan", "control", {"confidence": float("nan")})]
    if not ctx.db.is_sqlite:  # PostgreSQL stores NaN; it refuses NUL
        poison = [ResultItem("poison", "a\x00b", "control", {"confidence": 0.5})]
    good = [ResultItem("poison", f"r{i}", "control", {"confidence": 0.5}) for i in range(4)]
    before = set_aside_total("result_writer")
    outcomes = ab.writer.write(good[:2] + poison + good[2:])
    assert set_aside_total("result_writer") == before + 1
    assert outcomes[:2] == [1, 1] and outcomes[-2:] == [1, 1]
    assert isinstance(outcomes[2], Exception) and "set aside" in str(outcomes[2])
    assert ab.writer.set_aside == 1
    assert ab.writer.write([ResultItem("poison", "after", "control", {"confidence": 0.5})]) == [1]
    status = ab.get_experiment_status("poison")
    assert "control" in str(status)
    assert recent_events(kind="experiment.result_set_aside", limit=5)


def test_snapshots_set_aside_a_refused_row(ctx) -> None:
    from core.deployments.snapshots import SnapshotStore
    from core.deployments.tracker import PerformanceTracker

    tracker = PerformanceTracker()
    tracker.record("good", "m:v1", 0.01, True)
    tracker.record("bad", None, 0.01, True)  # type: ignore[arg-type]  # NOT NULL refuses it
    store = SnapshotStore(ctx.db)
    before = set_aside_total("snapshots")
    assert store.maybe_persist(tracker, ["bad", "good"], force=True) == 1
    assert store.set_aside == 1
    assert set_aside_total("snapshots") == before + 1
    assert store.latest("good") is not None and store.latest("bad") is None
    assert recent_events(kind="snapshot.row_set_aside", limit=5)


MULTIPROCESS_WRITER = """
from core.monitoring.set_aside import count_set_aside
count_set_aside("prediction_log")
count_set_aside("snapshots")
"""
MULTIPROCESS_SCRAPE = """
from core.monitoring.metrics import ServingMetrics
print(ServingMetrics().render()[0].decode())
"""


def test_set_aside_counter_sums_every_worker_in_multiprocess_mode(tmp_path) -> None:
    """Under ``serve --workers N`` the scrape answers for the host: two processes that set rows
    aside (and exit) are summed by a third that renders /metrics."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_WRITER], env=env, check=True)
    scrape = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRAPE], env=env, check=True, capture_output=True
    ).stdout.decode()
    assert 'nightscan_rows_set_aside_total{writer="prediction_log"} 2.0' in scrape
    assert 'nightscan_rows_set_aside_total{writer="snapshots"} 2.0' in scrape
