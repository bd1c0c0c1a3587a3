"""Canary rollouts, their analyses and per-arm observation batches.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_id", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("canary_ref", sa.String(300), nullable=False),
        sa.Column("stable_ref", sa.String(300), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("step_started_at", sa.Float(), nullable=False),
        sa.Column("next_analysis_at", sa.Float(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("fails", sa.Integer(), nullable=False),
        sa.Column("inconclusive", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("consumed_sample_id", sa.Integer(), nullable=False),
        sa.Column("last_verdict", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_canary_deployment", "canary", ["deployment_id", "id"])
    op.create_index("ix_canary_state", "canary", ["state"])
    op.create_table(
        "canary_check",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("canary_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=True),
    )
    op.create_index("ix_canary_check_canary", "canary_check", ["canary_id", "id"])
    op.create_table(
        "canary_sample",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("canary_id", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(10), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("labelled", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("latencies_ms", sa.JSON(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sqlite_autoincrement=True,  # ids only grow: the judge consumes batches by id
    )
    op.create_index("ix_canary_sample_canary", "canary_sample", ["canary_id", "id"])


def downgrade() -> None:
    for table in ("canary_sample", "canary_check", "canary"):
        op.drop_table(table)
