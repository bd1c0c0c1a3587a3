"""Result collection: validation, idempotency, durability across SIGKILL, concurrent writer
processes (nothing lost, nothing double counted), sufficient statistics, export."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
from collections import defaultdict

import pytest
from sqlalchemy import func, select
from test_experiments_support import child_env, config_dict, register_models, run_child

from data.experiment_tables import (
    ExperimentEpochMetricStatsRow,
    ExperimentMetricStatsRow,
    ExperimentResultRow,
    ExperimentUnitCountRow,
    ExperimentUnitRow,
)


@pytest.fixture
def manager(ctx):
    from core import get_ab_test_manager

    register_models()
    m = get_ab_test_manager()
    m.create_experiment(config_dict("res"))
    m.start_experiment("res")
    return m


def _raw(ctx, experiment_id: str = "res") -> list[tuple[str, str, str, float]]:
    t = ExperimentResultRow.__table__
    with ctx.db.session() as s:
        rows = s.execute(
            select(t.c.request_id, t.c.variant, t.c.metric, t.c.value).where(
                t.c.experiment_id == experiment_id
            )
        ).all()
    return [tuple(r) for r in rows]


def _stats(ctx, experiment_id: str = "res") -> dict[tuple[str, str], tuple[int, float, float]]:
    with ctx.db.session() as s:
        rows = s.execute(
            select(ExperimentMetricStatsRow).where(
                ExperimentMetricStatsRow.experiment_id == experiment_id
            )
        ).scalars()
        return {(r.variant, r.metric): (r.n, r.sum, r.sum_sq) for r in rows}


def _assert_stats_match_raw(ctx, experiment_id: str = "res") -> None:
    """The sufficient statistics equal a recomputation from the raw rows."""
    expected: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for _req, variant, metric, value in _raw(ctx, experiment_id):
        acc = expected[(variant, metric)]
        acc[0] += 1
        acc[1] += value
        acc[2] += value * value
    stats = _stats(ctx, experiment_id)
    assert set(stats) == set(expected)
    for key, (n, s, ss) in stats.items():
        assert n == expected[key][0]
        assert s == pytest.approx(expected[key][1], rel=1e-9, abs=1e-9)
        assert ss == pytest.approx(expected[key][2], rel=1e-9, abs=1e-9)
    _assert_epoch_stats_match_raw(ctx, experiment_id)


def _assert_epoch_stats_match_raw(ctx, experiment_id: str) -> None:
    """Per-epoch sums equal the raw rows grouped by their unit's allocation version."""
    r, u = ExperimentResultRow.__table__, ExperimentUnitRow.__table__
    e = ExperimentEpochMetricStatsRow.__table__
    key = (r.c.variant, r.c.metric, u.c.allocation_version)
    joined = (
        select(*key, func.count(), func.sum(r.c.value), func.sum(r.c.value * r.c.value))
        .join(u, (u.c.experiment_id == r.c.experiment_id) & (u.c.request_id == r.c.request_id))
        .where(r.c.experiment_id == experiment_id)
        .group_by(*key)
    )
    stored = select(e.c.variant, e.c.metric, e.c.allocation_version, e.c.n, e.c.sum, e.c.sum_sq)
    with ctx.db.session() as s:
        expected = {tuple(row[:3]): row[3:] for row in s.execute(joined)}
        got = {
            tuple(row[:3]): row[3:]
            for row in s.execute(stored.where(e.c.experiment_id == experiment_id))
        }
    assert set(got) == set(expected)
    for k, (n, total, total_sq) in got.items():
        assert n == expected[k][0]
        assert total == pytest.approx(expected[k][1], rel=1e-9, abs=1e-9)
        assert total_sq == pytest.approx(expected[k][2], rel=1e-9, abs=1e-9)


INVALID = [
    ("ghost", {"accuracy": 1.0}, "variant 'ghost' is not one of control, treatment"),
    ("control", {"f1": 0.5}, "unknown metric 'f1'"),
    ("control", {"confidence": float("nan")}, "must be a finite number"),
    ("control", {"confidence": float("inf")}, "must be a finite number"),
    ("control", {"confidence": "0.5"}, "must be a finite number"),
    ("control", {"confidence": True}, "must be a finite number"),
    ("control", {"accuracy": 1.5}, "binary metric 'accuracy' must lie in [0, 1]"),
    ("control", {}, "metrics must be a non-empty mapping"),
]


def test_invalid_results_are_refused_and_nothing_is_written(ctx, manager) -> None:
    from core import ValidationError

    for variant, metrics, message in INVALID:
        with pytest.raises(ValidationError) as info:
            manager.record_result("res", "r1", variant, metrics)
        assert message in str(info.value)
    with pytest.raises(ValidationError) as info:  # every fault of one call, one message each
        manager.record_result("res", "", "ghost", {"f1": 1, "accuracy": -1})
    assert str(info.value).count(";") == 3
    assert _raw(ctx) == [] and _stats(ctx) == {}


def test_unknown_and_draft_experiments_are_refused(ctx, manager) -> None:
    from core import ConflictError, NotFoundError

    with pytest.raises(NotFoundError):
        manager.record_result("missing", "r1", "control", {"accuracy": 1.0})
    manager.create_experiment(config_dict("draft"))
    with pytest.raises(ConflictError, match="DRAFT"):
        manager.record_result("draft", "r1", "control", {"accuracy": 1.0})


def test_duplicates_are_idempotent_and_partial_results_merge(ctx, manager) -> None:
    assert manager.record_result("res", "r1", "control", {"inference_time": 0.2}) == 1
    assert manager.record_result("res", "r1", "control", {"inference_time": 0.2}) == 0
    # Ground truth arrives later for the same request: a new metric, not a duplicate.
    assert (
        manager.record_result("res", "r1", "control", {"accuracy": 1.0, "inference_time": 9}) == 1
    )
    assert sorted(_raw(ctx)) == [
        ("r1", "control", "accuracy", 1.0),
        ("r1", "control", "inference_time", 0.2),
    ]
    assert _stats(ctx)[("control", "inference_time")] == (1, 0.2, pytest.approx(0.04))
    assert manager.variant_for_request("res", "r1") == "control"
    assert manager.variant_for_request("res", "never-seen") is None
    _assert_stats_match_raw(ctx)


def test_a_request_keeps_its_first_variant(ctx, manager) -> None:
    from core import ConflictError

    manager.record_result("res", "r1", "treatment", {"accuracy": 1.0})
    with pytest.raises(ConflictError, match="recorded under variant 'treatment'"):
        manager.record_result("res", "r1", "control", {"confidence": 0.4})
    assert len(_raw(ctx)) == 1


def test_bulk_recording_and_late_results_after_stop(ctx, manager) -> None:
    from core import ConflictError, ValidationError

    rows = [
        {
            "experiment_id": "res",
            "request_id": f"r{i}",
            "variant": "control",
            "metrics": {"accuracy": i % 2},
        }
        for i in range(10)
    ]
    assert manager.record_results(rows + rows[:3]) == [1] * 10 + [0] * 3
    with pytest.raises(ValidationError, match="nothing written"):
        manager.record_results(
            [("res", "x1", "control", {"accuracy": 1.0}), ("res", "x2", "c", {})]
        )
    assert len(_raw(ctx)) == 10

    manager.stop_experiment("res", "done")
    # Ground truth for a request the experiment saw is still accepted; a new request is not.
    assert manager.record_result("res", "r1", "control", {"confidence": 0.7}) == 1
    with pytest.raises(ConflictError, match="has ended"):
        manager.record_result("res", "new", "control", {"confidence": 0.7})
    with ctx.db.session() as s:
        units = s.execute(select(func.count()).select_from(ExperimentUnitRow)).scalar()
        counted = s.execute(select(func.sum(ExperimentUnitCountRow.n))).scalar()
    assert units == counted == 10
    _assert_stats_match_raw(ctx)


def test_export_csv_and_jsonl(ctx, manager, tmp_path) -> None:
    from core import ValidationError

    manager.record_result("res", "r1", "control", {"accuracy": 1.0, "inference_time": 0.25})
    manager.record_result("res", "r2", "treatment", {"accuracy": 0.0})
    buf = io.StringIO()
    assert manager.export_results("res", "csv", buf) == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [(r["request_id"], r["metric"], float(r["value"])) for r in rows] == [
        ("r1", "accuracy", 1.0),
        ("r1", "inference_time", 0.25),
        ("r2", "accuracy", 0.0),
    ]
    path = tmp_path / "out.jsonl"
    assert manager.export_results("res", "jsonl", path) == 3
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[2]["variant"] == "treatment" and lines[0]["recorded_at"].endswith("+00:00")
    with pytest.raises(ValidationError, match="unknown export format"):
        manager.export_results("res", "xml", buf)


KILLED_CHILD = """
import sys
from core import get_ab_test_manager
m = get_ab_test_manager()
i = 0
while True:
    variant = m.assign("res", f"k{i}")[0]
    m.record_result("res", f"k{i}", variant, {"accuracy": float(i % 2), "inference_time": i / 1000})
    print(i, flush=True)  # acknowledged only after record_result returned
    i += 1
"""


def test_acknowledged_results_survive_sigkill(ctx, manager) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked = []
    try:
        for line in proc.stdout:
            acked.append(int(line))
            if len(acked) >= 40:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(acked) >= 40, proc.stderr.read()
    stored = {(r[0], r[2]) for r in _raw(ctx)}
    for i in acked:
        assert (f"k{i}", "accuracy") in stored and (f"k{i}", "inference_time") in stored
    _assert_stats_match_raw(ctx)


WRITER_CHILD = """
import json, sys, threading
from core import get_ab_test_manager
worker, per_worker = int(sys.argv[1]), int(sys.argv[2])
m = get_ab_test_manager()
# Each request is written by two workers (the ranges overlap by half), with the same values.
ids = list(range(worker * per_worker // 2, worker * per_worker // 2 + per_worker))
new = [0] * 4
def run(t):
    for i in ids[t::4]:
        variant = m.assign("res", f"w{i}")[0]
        metrics = {"accuracy": float(i % 3 == 0), "inference_time": (i % 17) / 10}
        if i % 5 == 0:  # some in bulk calls, the rest one by one
            new[t] += sum(m.record_results([("res", f"w{i}", variant, metrics)]))
        else:
            new[t] += m.record_result("res", f"w{i}", variant, metrics)
threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"new": sum(new), "commits": m.writer.commits}))
"""


def test_concurrent_writer_processes_lose_nothing_and_count_nothing_twice(ctx, manager) -> None:
    workers, per_worker = 4, 240
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_CHILD, str(w), str(per_worker)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        reports.append(json.loads(out))
    distinct = set(range(workers * per_worker // 2 + per_worker // 2))
    raw = _raw(ctx)
    assert len(raw) == 2 * len(distinct)  # two metrics per request, each exactly once
    assert {(r[0], r[2]) for r in raw} == {
        (f"w{i}", m) for i in distinct for m in ("accuracy", "inference_time")
    }
    # Whoever inserted a value counted it; all the others saw a duplicate.
    assert sum(r["new"] for r in reports) == len(raw)
    _assert_stats_match_raw(ctx)
    stats = _stats(ctx)
    assert sum(stats[(v, "accuracy")][0] for v in ("control", "treatment")) == len(distinct)
    expected_time = sum((i % 17) / 10 for i in distinct)
    total_time = sum(stats[(v, "inference_time")][1] for v in ("control", "treatment"))
    assert math.isclose(total_time, expected_time, rel_tol=1e-9)
    with ctx.db.session() as s:
        assert s.execute(select(func.sum(ExperimentUnitCountRow.n))).scalar() == len(distinct)
    # Routing is identical in every process, so every request kept the variant it was routed to.
    for request_id, variant, _metric, _value in raw:
        assert manager.assign("res", request_id)[0] == variant


def test_callers_waiting_for_the_lock_share_one_commit(sqlite_ctx) -> None:
    """While another connection holds SQLite's write lock, eight callers queue up; once it is
    released, all of them are written by one transaction."""
    import sqlite3
    import threading
    import time

    from core import get_ab_test_manager

    register_models()
    manager = get_ab_test_manager()
    manager.create_experiment(config_dict("res"))
    manager.start_experiment("res")
    manager.record_result("res", "warm", "control", {"confidence": 0.5})
    before = manager.writer.commits
    blocker = sqlite3.connect(sqlite_ctx.db.url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    threads = [
        threading.Thread(
            target=manager.record_result, args=("res", f"g{t}", "control", {"confidence": 0.5})
        )
        for t in range(8)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while manager.writer._queue.qsize() < 7 and time.monotonic() < deadline:
        time.sleep(0.01)  # the committer holds the first and polls for the lock
    blocker.execute("COMMIT")
    blocker.close()
    for t in threads:
        t.join()
    assert manager.writer.commits - before == 1
    assert len(_raw(sqlite_ctx)) == 9
    _assert_stats_match_raw(sqlite_ctx)


def test_child_can_read_what_parent_recorded(ctx, manager) -> None:
    manager.record_result("res", "p1", "treatment", {"accuracy": 1.0})
    code = (
        "from core import get_ab_test_manager\n"
        "print(get_ab_test_manager().variant_for_request('res', 'p1'))\n"
    )
    assert run_child(code).stdout.strip() == "treatment"
