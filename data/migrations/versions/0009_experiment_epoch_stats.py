"""Sufficient statistics per allocation epoch, so analysis compares arms within an epoch
(backfilled from the raw results and each unit's allocation version).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_epoch_metric_stats",
        sa.Column(
            "experiment_id",
            sa.String(200),
            sa.ForeignKey("experiment.experiment_id", ondelete="CASCADE"),
            nullable=False,
            primary_key=True,
        ),
        sa.Column("variant", sa.String(100), primary_key=True),
        sa.Column("metric", sa.String(100), primary_key=True),
        sa.Column("allocation_version", sa.Integer(), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("sum_sq", sa.Float(), nullable=False),
    )
    op.execute(
        "INSERT INTO experiment_epoch_metric_stats"
        " (experiment_id, variant, metric, allocation_version, n, sum, sum_sq)"
        " SELECT r.experiment_id, r.variant, r.metric, u.allocation_version,"
        " COUNT(*), SUM(r.value), SUM(r.value * r.value)"
        " FROM experiment_result r JOIN experiment_unit u"
        " ON u.experiment_id = r.experiment_id AND u.request_id = r.request_id"
        " GROUP BY r.experiment_id, r.variant, r.metric, u.allocation_version"
    )


def downgrade() -> None:
    op.drop_table("experiment_epoch_metric_stats")
