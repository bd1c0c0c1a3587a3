"""Direct reads for the CLI's listing commands: the same answers as the services, over the
standard library's ``sqlite3``, without importing SQLAlchemy, SQLModel or numpy (together
about 300 ms of a cold start that should take 350 ms in all).

``direct_reader()`` yields a ``DirectReader`` only when that is safe: the home's database is a
plain SQLite file that already exists and whose schema is at the Alembic head this code knows
(``data.schema_version``), opened read-only. Anything else (PostgreSQL, a new home, an older
schema that needs migrating, ``NIGHTSCAN_DIRECT_READS=0``) yields None, and the caller takes the
services (``ModelRegistry``, ``AuditLog``, the managers), which create and migrate.

Each method has the signature and the result type of the service method it stands in for, so a
command writes ``source = reader or get_model_registry()`` and renders one way; the parity test
(``tests/core/test_direct_reads.py``) runs both on the same databases. The columns read are the
fields of the result dataclasses themselves (``selected_columns``: one source of truth; a test
checks each against the SQLModel tables), and the SQL mirrors the services' queries: the same
filters (``LIKE`` prefixes included), the same order, the same paging.

What the direct path does not do: the housekeeping of opening a context (creating the home,
sweeping interrupted artifact writes) and the deployment manager's invariant repair on start.
A listing command is a read; the next command that builds a context does both.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from core.errors import ValidationError
from core.settings import Settings
from data.schema_version import head_revision
from data.sqlite_direct import (
    json_value,
    open_read_only,
    sqlite_file,
    utc_datetime,
    utc_parameter,
)

if TYPE_CHECKING:
    from core.audit_entry import AuditEntry
    from core.deployments.info import DeploymentInfo
    from core.deployments.performance import PerformanceMetrics
    from core.event_record import Event
    from core.experiments.models import ExperimentInfo, ExperimentStatus
    from core.lifecycle import ModelStatus
    from core.model_metadata import ModelMetadata

DISABLE_ENV = "NIGHTSCAN_DIRECT_READS"  # "0": always take the services (benchmarks, debugging)

# table -> the result dataclass whose fields are the columns read (less the fields that are not
# columns of that table: an experiment's allocation is its current experiment_allocation row's).
# Each command imports only its own dataclasses.
_RESULT_OF = {
    "model_version": ("core.model_metadata", "ModelMetadata", ()),
    "audit_log": ("core.audit_entry", "AuditEntry", ()),
    "event": ("core.event_record", "Event", ()),
    "experiment": ("core.experiments.models", "ExperimentInfo", ("allocation",)),
    "deployment": ("core.deployments.info", "DeploymentInfo", ()),
}
# The columns read besides those (for the column test): joins, filters and snapshots.
OTHER_COLUMNS = {
    "experiment_allocation": ("experiment_id", "version", "allocation"),
    "model_tag": ("model_version_pk", "tag"),
    "model_version": ("id", "version_key"),
    "performance_snapshot": ("id", "deployment_id", "at", "metrics"),
}


@cache
def selected_columns(table: str) -> tuple[str, ...]:
    """The columns a listing reads from ``table``: the fields of its result dataclass."""
    module, name, without = _RESULT_OF[table]
    cls = getattr(import_module(module), name)
    return tuple(f.name for f in fields(cls) if f.name not in without)


# Columns whose stored text is decoded: DATETIME (naive UTC) and JSON.
_DATETIMES = {"created_at", "updated_at", "at", "started_at", "ended_at"}
_JSON = {"training_config", "metrics", "tags", "before", "after", "data", "config", "allocation"}


def _decode(names: tuple[str, ...], row: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in zip(names, row, strict=True):
        if name in _DATETIMES:
            value = utc_datetime(value)
        elif name in _JSON:
            value = json_value(value)
        out[name] = value
    return out


def _columns(table: str) -> str:
    return ", ".join(f"{table}.{c}" for c in selected_columns(table))


class DirectReader:
    """The listing queries of the services over one read-only ``sqlite3`` connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def _rows(self, sql: str, params: list[Any]) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    # ---- registry (ModelRegistry.list_models / count_models) -----------------------------

    @staticmethod
    def _model_filters(model_id, status, tag, framework) -> tuple[str, list[Any]]:
        from core.lifecycle import ModelStatus

        join, where, params = "", [], []
        if model_id:
            where.append("model_version.model_id = ?")
            params.append(model_id)
        if status:
            where.append("model_version.status = ?")
            params.append(ModelStatus.parse(status).value)
        if framework:
            where.append("model_version.framework = ?")
            params.append(framework)
        if tag:
            join = " JOIN model_tag ON model_version.id = model_tag.model_version_pk"
            where.append("model_tag.tag = ?")
            params.append(tag)
        return join + (" WHERE " + " AND ".join(where) if where else ""), params

    def list_models(
        self,
        model_id: str | None = None,
        status: ModelStatus | str | None = None,
        tag: str | None = None,
        framework: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ModelMetadata]:
        """Versions matching every filter, by model id then semantic version."""
        from core.lifecycle import ModelStatus
        from core.model_metadata import ModelMetadata

        if (limit is not None and limit < 0) or offset < 0:
            raise ValidationError("limit and offset must not be negative")
        names = selected_columns("model_version")
        filters, params = self._model_filters(model_id, status, tag, framework)
        sql = (
            f"SELECT {_columns('model_version')} FROM model_version{filters}"
            " ORDER BY model_version.model_id, model_version.version_key LIMIT ? OFFSET ?"
        )
        rows = self._rows(sql, [*params, -1 if limit is None else limit, offset])
        models = []
        for row in rows:
            d = _decode(names, row)
            d["status"] = ModelStatus(d["status"])
            d["training_config"] = dict(d["training_config"] or {})
            d["metrics"] = dict(d["metrics"] or {})
            d["tags"] = list(d["tags"] or [])
            models.append(ModelMetadata(**d))
        return models

    def count_models(self, model_id=None, status=None, tag=None, framework=None) -> int:
        filters, params = self._model_filters(model_id, status, tag, framework)
        return int(self._rows(f"SELECT count(*) FROM model_version{filters}", params)[0][0])

    # ---- audit log (AuditLog.entries) and events (core.events.recent_events) -------------

    def entries(
        self,
        *,
        entity_id: str | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        from core.audit_entry import AuditEntry

        where, params = [], []
        if entity_id:
            where.append("audit_log.entity_id = ?")
            params.append(entity_id)
        if action:  # SQLAlchemy's startswith(): LIKE, so '%' and '_' match as they do there
            where.append("(audit_log.action LIKE ? || '%')")
            params.append(action)
        names = selected_columns("audit_log")
        sql = (
            f"SELECT {_columns('audit_log')} FROM audit_log"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY audit_log.id DESC LIMIT ?"
        )
        return [AuditEntry(**_decode(names, r)) for r in self._rows(sql, [*params, limit])]

    def recent_events(
        self, *, kind: str | None = None, source: str | None = None, limit: int = 100
    ) -> list[Event]:
        """Newest first."""
        from core.event_record import Event

        where, params = [], []
        if kind:
            where.append("(event.kind LIKE ? || '%')")
            params.append(kind)
        if source:
            where.append("event.source = ?")
            params.append(source)
        names = selected_columns("event")
        sql = (
            f"SELECT {_columns('event')} FROM event"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY event.id DESC LIMIT ?"
        )
        return [Event(**_decode(names, r)) for r in self._rows(sql, [*params, limit])]

    # ---- experiments (ABTestManager.list_experiments) ------------------------------------

    def list_experiments(
        self, status: ExperimentStatus | str | None = None
    ) -> list[ExperimentInfo]:
        """Newest first, each with its current allocation."""
        from core.experiments.config import ExperimentConfig
        from core.experiments.models import ExperimentInfo, ExperimentStatus

        wanted = ExperimentStatus.parse(status) if status else None
        names = selected_columns("experiment")
        sql = (
            f"SELECT {_columns('experiment')}, experiment_allocation.allocation FROM experiment"
            " JOIN experiment_allocation"
            " ON experiment_allocation.experiment_id = experiment.experiment_id"
            " AND experiment_allocation.version = experiment.allocation_version"
            + (" WHERE experiment.status = ?" if wanted else "")
            + " ORDER BY experiment.created_at DESC"
        )
        infos = []
        for row in self._rows(sql, [wanted.value] if wanted else []):
            d = _decode((*names, "allocation"), row)
            d["status"] = ExperimentStatus(d["status"])
            d["config"] = ExperimentConfig.from_dict(d["config"])
            d["allocation"] = {k: float(v) for k, v in d["allocation"].items()}
            infos.append(ExperimentInfo(**d))
        return infos

    # ---- deployments (DeploymentManager.list_deployments, the tracker's snapshots) -------

    def list_deployments(self, include_stopped: bool = False) -> list[DeploymentInfo]:
        from core.deployments.config import DeploymentConfig
        from core.deployments.info import DeploymentInfo

        names = selected_columns("deployment")
        sql = (
            f"SELECT {_columns('deployment')} FROM deployment"
            + ("" if include_stopped else " WHERE deployment.status = 'running'")
            + " ORDER BY deployment.deployment_id"
        )
        infos = []
        for row in self._rows(sql, []):
            d = _decode(names, row)
            d["config"] = DeploymentConfig.from_dict(d["config"])
            infos.append(DeploymentInfo(**d))
        return infos

    def current_metrics(self, deployment_id: str) -> PerformanceMetrics | None:
        """What ``performance_tracker.get_current_metrics`` answers in a process that serves
        nothing: the newest fresh snapshot of every serving process, merged."""
        from core.deployments.performance import FRESH_FOR_S, merge, newest_per_process

        cutoff = datetime.now(UTC) - timedelta(seconds=FRESH_FOR_S)
        sql = (
            "SELECT performance_snapshot.metrics FROM performance_snapshot"
            " WHERE performance_snapshot.deployment_id = ? AND performance_snapshot.at >= ?"
            " ORDER BY performance_snapshot.id DESC"
        )
        rows = self._rows(sql, [deployment_id, utc_parameter(cutoff)])
        return merge(list(newest_per_process(json_value(r[0]) for r in rows).values()))


def _settings() -> Settings:
    """The settings the services would use: the configured context's, else env and file."""
    context = sys.modules.get("core.context")
    current = getattr(context, "_context", None) if context else None
    return current.settings if current is not None else Settings.load()


def open_direct_reader() -> DirectReader | None:
    """A reader when the home's database is a SQLite file at the schema head; else None."""
    if os.environ.get(DISABLE_ENV, "1") == "0":
        return None
    path = sqlite_file(_settings().database_url)
    conn = open_read_only(path, head_revision()) if path is not None else None
    return DirectReader(conn) if conn is not None else None


@contextmanager
def direct_reader(enabled: bool = True) -> Iterator[DirectReader | None]:
    """``with direct_reader() as reader: source = reader or <the service>``."""
    reader = open_direct_reader() if enabled else None
    try:
        yield reader
    finally:
        if reader is not None:
            reader.close()
