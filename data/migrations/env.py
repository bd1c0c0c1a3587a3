"""Alembic environment: always run with a connection handed in by ``data.migrate``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import data.auth_tables  # noqa: F401
import data.blob_tables  # noqa: F401
import data.canary_tables  # noqa: F401
import data.deployment_tables  # noqa: F401
import data.experiment_tables  # noqa: F401
import data.quality_tables  # noqa: F401
import data.server_tables  # noqa: F401
import data.tables  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=False,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Two processes starting at once must not both migrate.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7061636)")
    context.run_migrations()
