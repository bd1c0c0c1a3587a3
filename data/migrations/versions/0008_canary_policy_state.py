"""The canary policy's state (sufficient statistics over the whole rollout, canary_policy.py).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("canary") as batch:
        batch.add_column(sa.Column("policy_state", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("canary") as batch:
        batch.drop_column("policy_state")
