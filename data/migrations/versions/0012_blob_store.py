"""Content-addressed blobs stored in the database: a header row per sha256 and its bytes in
chunk rows, so every host on one PostgreSQL can fetch any version's weights.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "blob_chunk",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blob_chunk")
    op.drop_table("blob")
