"""Event stream.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
    )
    op.create_index("ix_event_at", "event", ["at"])
    op.create_index("ix_event_kind", "event", ["kind"])


def downgrade() -> None:
    op.drop_table("event")
