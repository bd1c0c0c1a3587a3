"""Model quality: the predicted confidence and the true label on each prediction, and hourly
sufficient counts (confusion cells, calibration bins) that quality queries sum, and drift alarms.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from data.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DIMENSIONS = (
    "deployment_id",
    "model_ref",
    "experiment_id",
    "variant",
    "canary_id",
    "canary_arm",
    "hour",
)


def _dimensions() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_ref", sa.String(300), nullable=False),
        sa.Column("experiment_id", sa.String(200), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("canary_id", sa.Integer(), nullable=False),
        sa.Column("canary_arm", sa.String(20), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("prediction") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch.add_column(sa.Column("confidence_bin", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("true_label", sa.String(200), nullable=True))
        batch.add_column(sa.Column("label_delay_s", sa.Float(), nullable=True))
    op.create_index("ix_prediction_deployment_at", "prediction", ["deployment_id", "at"])
    op.create_table(
        "quality_confusion_count",
        *_dimensions(),
        sa.Column("predicted_class", sa.String(200), nullable=False),
        sa.Column("true_label", sa.String(200), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("label_delay_sum_s", sa.Float(), nullable=False),
        sa.Column("label_delay_max_s", sa.Float(), nullable=False),
        sa.UniqueConstraint(
            *DIMENSIONS, "predicted_class", "true_label", name="uq_quality_confusion"
        ),
    )
    op.create_index(
        "ix_quality_confusion_dep_hour", "quality_confusion_count", ["deployment_id", "hour"]
    )
    op.create_table(
        "quality_confidence_count",
        *_dimensions(),
        sa.Column("confidence_bin", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("confidence_sum", sa.Float(), nullable=False),
        sa.UniqueConstraint(*DIMENSIONS, "confidence_bin", "outcome", name="uq_quality_confidence"),
    )
    op.create_index(
        "ix_quality_confidence_dep_hour", "quality_confidence_count", ["deployment_id", "hour"]
    )
    op.create_table(
        "quality_drift_alarm",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_ref", sa.String(300), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("p_class_mix", sa.Float(), nullable=True),
        sa.Column("p_confidence", sa.Float(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("deployment_id", "model_ref", "hour", name="uq_quality_drift_alarm"),
    )


def downgrade() -> None:
    op.drop_table("quality_drift_alarm")
    op.drop_table("quality_confidence_count")
    op.drop_table("quality_confusion_count")
    op.drop_index("ix_prediction_deployment_at", "prediction")
    with op.batch_alter_table("prediction") as batch:
        for name in ("label_delay_s", "true_label", "confidence_bin", "confidence"):
            batch.drop_column(name)
