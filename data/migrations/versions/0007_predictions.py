"""Predictions that feedback can be joined to from any server process, after restarts too.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction",
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_ref", sa.String(300), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("predicted_class", sa.String(200), nullable=False),
        sa.Column("experiment_id", sa.String(200), nullable=True),
        sa.Column("variant", sa.String(100), nullable=True),
        sa.Column("canary_id", sa.Integer(), nullable=True),
        sa.Column("canary_arm", sa.String(20), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("feedback_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_prediction_at", "prediction", ["at"])


def downgrade() -> None:
    op.drop_index("ix_prediction_at", "prediction")
    op.drop_table("prediction")
