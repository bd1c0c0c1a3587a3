"""Serving processes and their heartbeat: how a CLI finds the server that serves its home.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_process",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_server_process_seen_at", "server_process", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_server_process_seen_at", "server_process")
    op.drop_table("server_process")
