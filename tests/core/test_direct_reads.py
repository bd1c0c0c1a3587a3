"""The CLI's direct read path (``core.direct_reads``) against the services it stands in for: one
real SQLite database, every filter, sort and page of the five listing commands, the same
answers; and the cases where it must step aside (no file, an older schema, PostgreSQL, turned
off) or must not write."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from sqlmodel import SQLModel

import data.deployment_tables
import data.experiment_tables
import data.tables  # noqa: F401  (the tables on the metadata)
from core import get_ab_test_manager, get_deployment_manager, get_model_registry
from core.deployments import DeploymentConfig, PerformanceMetrics
from core.direct_reads import (
    _RESULT_OF,
    OTHER_COLUMNS,
    DirectReader,
    direct_reader,
    open_direct_reader,
    selected_columns,
)
from core.errors import ValidationError
from core.events import recent_events
from core.experiments import ExperimentConfig
from core.semver import version_key
from data.deployment_tables import DeploymentRow, PerformanceSnapshotRow
from data.experiment_tables import ExperimentAllocationRow, ExperimentRow
from data.schema_version import head_revision
from data.tables import AuditRow, EventRow, ModelTagRow, ModelVersionRow
from data.types import utcnow

NOW = utcnow()

MODELS = [  # model_id, version, status, framework, tags, minutes ago
    ("wd", "v2.10.0", "deployed", "pytorch", ["prod", "cli"], 9),
    ("wd", "v2.9.0", "retired", "pytorch", ["cli"], 8),
    ("wd", "v1.0.0-rc.2", "failed", "onnx", [], 7),
    ("wd", "v1.0.0-rc.10", "testing", "pytorch", ["rc"], 6),
    ("wd", "nightly", "training", "pytorch", [], 5),
    ("bat_detector", "v0.1.0", "validation", "onnx", ["prod"], 4),
    ("bat_detector", "1.0.0", "validation", "pytorch", [], 3),
    ("owl_net", "v3.0.0", "validation", "pytorch", ["cli", "rc"], 2),
]


def _seed(db) -> None:
    with db.write() as s:
        for i, (model_id, version, status, framework, tags, ago) in enumerate(MODELS):
            row = ModelVersionRow(
                model_id=model_id,
                version=version,
                version_key=version_key(version),
                name=f"{model_id}:{version}",
                description="" if i % 2 else "a description",
                created_at=NOW - timedelta(minutes=ago),
                status=status,
                framework=framework,
                architecture="small_cnn",
                training_config={"labels": ["owl", "hawk"], "epochs": i},
                metrics={"accuracy": 0.5 + i / 100} if i % 3 else {},
                file_size_bytes=1000 + i,
                checksum=f"{i:064x}",
                tags=tags,
            )
            s.add(row)
            s.flush()
            for tag in tags:
                s.add(ModelTagRow(model_version_pk=row.id, tag=tag))
        for i, (action, entity) in enumerate(
            [
                ("model.register", "wd:v2.10.0"),
                ("model.status", "wd:v2.10.0"),
                ("model_status", "wd:v2.9.0"),  # '_' is a LIKE wildcard on both paths
                ("experiment.running", "ab"),
                ("deployment.deploy", "wd_prod"),
                ("token.create", "ci"),
            ]
        ):
            s.add(
                AuditRow(
                    at=NOW - timedelta(seconds=60 - i),
                    actor="tester",
                    action=action,
                    entity_type=action.split(".")[0],
                    entity_id=entity,
                    before=None if i % 2 else {"status": "validation"},
                    after={"status": "deployed", "n": i},
                    detail="" if i % 3 else "why",
                )
            )
        for i, (kind, source, severity) in enumerate(
            [
                ("deployment.deployed", "wd_prod", "info"),
                ("alert.fired", "wd_prod", "warning"),
                ("alert.resolved", "wd_prod", "info"),
                ("experiment.started", "ab", "info"),
                ("alert.fired", "bat_prod", "critical"),
            ]
        ):
            s.add(
                EventRow(
                    at=NOW - timedelta(seconds=30 - i),
                    kind=kind,
                    severity=severity,
                    source=source,
                    message=f"event {i}",
                    data={"i": i, "nested": {"x": [1, 2]}} if i % 2 else {},
                )
            )
        for i, (experiment_id, status, version) in enumerate(
            [("ab", "running", 2), ("draft_one", "draft", 1), ("old", "stopped", 1)]
        ):
            config = ExperimentConfig(
                experiment_id=experiment_id,
                name=experiment_id.upper(),
                model_variants={"control": "wd:v2.9.0", "treatment": "wd:v2.10.0"},
                traffic_allocation={"control": 60.0, "treatment": 40.0},
                success_metrics=["accuracy", "confidence"],
            ).normalized()
            s.add(
                ExperimentRow(
                    experiment_id=experiment_id,
                    name=config.name,
                    config=config.to_dict(),
                    status=status,
                    allocation_version=version,
                    created_at=NOW - timedelta(hours=i),
                    created_by="tester",
                    started_at=None if status == "draft" else NOW - timedelta(hours=i),
                    ended_at=NOW if status == "stopped" else None,
                    stop_reason="enough" if status == "stopped" else "",
                    stopped_by="tester" if status == "stopped" else "",
                )
            )
            s.flush()
            for v in range(1, version + 1):
                s.add(
                    ExperimentAllocationRow(
                        experiment_id=experiment_id,
                        version=v,
                        allocation={"control": 60 - 10 * v, "treatment": 40 + 10 * v},
                        source="initial" if v == 1 else "manual",
                        actor="tester",
                    )
                )
        for deployment_id, version, status in [
            ("wd_prod", "v2.10.0", "running"),
            ("bat_prod", "v0.1.0", "running"),
            ("wd_old", "v2.9.0", "stopped"),
        ]:
            model_id = deployment_id.split("_")[0]
            config = DeploymentConfig.from_dict(
                {"model_id": model_id, "version": version, "deployment_id": deployment_id}
            )
            s.add(
                DeploymentRow(
                    deployment_id=deployment_id,
                    model_id=model_id,
                    version=version,
                    environment="production",
                    status=status,
                    health="healthy",
                    config=config.to_dict(),
                    generation=2,
                    reason="deployed",
                    created_at=NOW - timedelta(hours=1),
                    updated_at=NOW - timedelta(minutes=1),
                )
            )
        # wd_prod: two processes with fresh snapshots (merged) and older rows; bat_prod: stale.
        for deployment_id, process, seconds_ago, rps in [
            ("wd_prod", "host:1", 50, 1.0),
            ("wd_prod", "host:1", 10, 4.0),
            ("wd_prod", "host:2", 20, 2.5),
            ("wd_prod", "host:3", 300, 9.0),
            ("bat_prod", "host:1", 300, 3.0),
        ]:
            # Fresh relative to this test's run, not to the module's import (NOW): under xdist
            # a module may be imported minutes before its test runs.
            at = utcnow() - timedelta(seconds=seconds_ago)
            metrics = PerformanceMetrics(
                deployment_id=deployment_id,
                model_version="v",
                timestamp=at,
                requests_per_second=rps,
                average_latency_ms=3.0,
                p50_latency_ms=2.0,
                p95_latency_ms=5.0 + rps,
                p99_latency_ms=9.0,
                error_rate=0.0,
                memory_usage_mb=100.0,
                cpu_usage_percent=10.0,
                requests_in_window=int(rps * 60),
                batch_size_distribution={1: 3, 4: 1},
            )
            s.add(
                PerformanceSnapshotRow(
                    deployment_id=deployment_id,
                    model_version="v",
                    at=at,
                    metrics={**metrics.to_dict(), "process": process},
                    samples=[],
                )
            )


@pytest.fixture
def seeded(sqlite_ctx):
    _seed(sqlite_ctx.db)
    with direct_reader() as reader:
        assert reader is not None
        yield sqlite_ctx, reader


MODEL_QUERIES = [
    {},
    {"model_id": "wd"},
    {"status": "validation"},
    {"status": "DEPLOYED"},
    {"framework": "onnx"},
    {"tag": "cli"},
    {"tag": "rc", "model_id": "wd"},
    {"tag": "nope"},
    {"limit": 3},
    {"limit": 3, "offset": 2},
    {"offset": 7},
    {"limit": 0},
    {"offset": 100},
    {"model_id": "wd", "status": "testing", "framework": "pytorch", "tag": "rc"},
]


@pytest.mark.parametrize("query", MODEL_QUERIES, ids=str)
def test_models_and_counts_match_the_registry(seeded, query) -> None:
    _, reader = seeded
    registry = get_model_registry()
    direct = reader.list_models(**query)
    assert direct == registry.list_models(**query)
    filters = {k: v for k, v in query.items() if k not in ("limit", "offset")}
    assert reader.count_models(**filters) == registry.count_models(**filters)
    assert [m.to_dict() for m in direct] == [m.to_dict() for m in registry.list_models(**query)]


def test_models_are_all_there_in_semantic_order(seeded) -> None:
    _, reader = seeded
    wd = [m.version for m in reader.list_models(model_id="wd")]
    assert wd == ["v1.0.0-rc.2", "v1.0.0-rc.10", "v2.9.0", "v2.10.0", "nightly"]
    assert reader.count_models() == len(MODELS)


@pytest.mark.parametrize("query", [{"status": "bogus"}, {"limit": -1}, {"offset": -1}], ids=str)
def test_bad_model_queries_fail_alike(seeded, query) -> None:
    _, reader = seeded
    with pytest.raises(ValidationError) as direct:
        reader.list_models(**query)
    with pytest.raises(ValidationError) as service:
        get_model_registry().list_models(**query)
    assert str(direct.value) == str(service.value)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"limit": 2},
        {"action": "model."},
        {"action": "model_"},
        {"action": "MODEL"},  # LIKE is case-insensitive (ASCII) on SQLite: on both paths
        {"entity_id": "wd:v2.10.0"},
        {"entity_id": "wd:v2.10.0", "action": "model.st"},
        {"action": "nothing"},
    ],
    ids=str,
)
def test_audit_entries_match_the_audit_log(seeded, query) -> None:
    ctx, reader = seeded
    direct = reader.entries(**query)
    assert direct == ctx.audit.entries(**query)
    assert [e.to_dict() for e in direct] == [e.to_dict() for e in ctx.audit.entries(**query)]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"limit": 1},
        {"kind": "alert"},
        {"kind": "alert.f"},
        {"source": "wd_prod"},
        {"kind": "alert", "source": "bat_prod"},
        {"kind": "zzz"},
    ],
    ids=str,
)
def test_events_match_recent_events(seeded, query) -> None:
    _, reader = seeded
    assert reader.recent_events(**query) == recent_events(**query)


@pytest.mark.parametrize("status", [None, "running", "DRAFT", "stopped", "completed"])
def test_experiments_match_the_manager(seeded, status) -> None:
    _, reader = seeded
    direct = reader.list_experiments(status)
    service = get_ab_test_manager().list_experiments(status)
    assert direct == service
    assert [i.to_dict() for i in direct] == [i.to_dict() for i in service]
    if status is None:  # the current allocation version's split, as floats
        assert direct[0].allocation == {"control": 40.0, "treatment": 60.0}


def test_an_unknown_experiment_status_fails_alike(seeded) -> None:
    _, reader = seeded
    with pytest.raises(ValidationError) as direct:
        reader.list_experiments("bogus")
    with pytest.raises(ValidationError) as service:
        get_ab_test_manager().list_experiments("bogus")
    assert str(direct.value) == str(service.value)


def test_deployments_and_their_snapshots_match_the_manager(seeded) -> None:
    _, reader = seeded
    manager = get_deployment_manager()  # last: its start-up check may add events
    for include_stopped in (False, True):
        direct = reader.list_deployments(include_stopped)
        service = manager.list_deployments(include_stopped=include_stopped)
        assert direct == service
        assert [i.to_dict() for i in direct] == [i.to_dict() for i in service]
    assert [i.deployment_id for i in direct] == ["bat_prod", "wd_old", "wd_prod"]
    for deployment_id in ("wd_prod", "bat_prod", "nobody"):
        assert reader.current_metrics(deployment_id) == (
            manager.performance_tracker.get_current_metrics(deployment_id)
        )
    merged = reader.current_metrics("wd_prod")
    assert merged.requests_per_second == pytest.approx(4.0 + 2.5)  # host:1's newest + host:2
    assert reader.current_metrics("bat_prod") is None  # only a stale snapshot


def test_the_columns_read_are_columns_of_the_tables() -> None:
    tables = SQLModel.metadata.tables
    for table in _RESULT_OF:
        assert set(selected_columns(table)) <= set(tables[table].columns.keys()), table
    for table, columns in OTHER_COLUMNS.items():
        assert set(columns) <= set(tables[table].columns.keys()), table


def test_it_reads_without_writing(seeded) -> None:
    _, reader = seeded
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.conn.execute("DELETE FROM event")
    assert isinstance(reader, DirectReader)


def test_it_steps_aside_for_an_older_schema(sqlite_ctx) -> None:
    for revision, usable in (("0001", False), (head_revision(), True)):
        with sqlite_ctx.db.write() as s:
            s.connection().exec_driver_sql(
                "UPDATE alembic_version SET version_num = ?", (revision,)
            )
        reader = open_direct_reader()
        assert (reader is not None) is usable
        if reader is not None:
            reader.close()


def test_it_steps_aside_when_turned_off(monkeypatch, sqlite_ctx) -> None:
    with direct_reader() as reader:
        assert reader is not None
    monkeypatch.setenv("NIGHTSCAN_DIRECT_READS", "0")
    with direct_reader() as reader:
        assert reader is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///{home}/missing.db",
        "sqlite:///{home}/nightscan.db?timeout=5",
    ],
)
def test_it_steps_aside_for_other_urls(tmp_path, monkeypatch, url) -> None:
    monkeypatch.setenv("NIGHTSCAN_DATABASE_URL", url.format(home=tmp_path))
    assert open_direct_reader() is None
    assert not (tmp_path / "missing.db").exists()  # and creates nothing
