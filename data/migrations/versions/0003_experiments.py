"""A/B experiments: definitions, lifecycle and allocation history, units, raw results and
sufficient statistics.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _experiment_fk(primary_key: bool = False) -> sa.Column:
    return sa.Column(
        "experiment_id",
        sa.String(200),
        sa.ForeignKey("experiment.experiment_id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("experiment_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("allocation_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(), nullable=False),
        sa.Column("stopped_by", sa.String(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_experiment_status", "experiment", ["status"])

    op.create_table(
        "experiment_status_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        _experiment_fk(),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
    )

    op.create_table(
        "experiment_allocation",
        sa.Column("id", sa.Integer(), primary_key=True),
        _experiment_fk(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("allocation", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.UniqueConstraint("experiment_id", "version", name="uq_experiment_allocation_version"),
    )

    op.create_table(
        "experiment_unit",
        _experiment_fk(primary_key=True),
        sa.Column("request_id", sa.String(300), primary_key=True),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("allocation_version", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
    )

    op.create_table(
        "experiment_unit_count",
        _experiment_fk(primary_key=True),
        sa.Column("variant", sa.String(100), primary_key=True),
        sa.Column("allocation_version", sa.Integer(), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )

    op.create_table(
        "experiment_result",
        sa.Column("id", BIG_ID, primary_key=True),
        _experiment_fk(),
        sa.Column("request_id", sa.String(300), nullable=False),
        sa.Column("metric", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("experiment_id", "request_id", "metric", name="uq_experiment_result"),
    )
    op.create_index("ix_experiment_result_export", "experiment_result", ["experiment_id", "id"])

    op.create_table(
        "experiment_metric_stats",
        _experiment_fk(primary_key=True),
        sa.Column("variant", sa.String(100), primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("sum_sq", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "experiment_metric_stats",
        "experiment_result",
        "experiment_unit_count",
        "experiment_unit",
        "experiment_allocation",
        "experiment_status_change",
        "experiment",
    ):
        op.drop_table(table)
