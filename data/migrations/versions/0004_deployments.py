"""Deployments, their revision history and performance snapshots.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment",
        sa.Column("deployment_id", sa.String(200), primary_key=True),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("health", sa.String(20), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deployment_status", "deployment", ["status"])
    op.create_table(
        "deployment_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deployment_revision_dep", "deployment_revision", ["deployment_id", "id"])
    op.create_table(
        "performance_snapshot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(300), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("samples", sa.JSON(), nullable=True),
    )
    op.create_index("ix_perf_snapshot_dep_at", "performance_snapshot", ["deployment_id", "at"])


def downgrade() -> None:
    for table in ("performance_snapshot", "deployment_revision", "deployment"):
        op.drop_table(table)
