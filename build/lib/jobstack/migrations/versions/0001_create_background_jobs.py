"""Create background_jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The package's own types, whichever name it is imported under (`db` here, `jobstack` when installed).
    models = context.config.attributes["models"]
    JsonDocument, UTCDateTime = models.JsonDocument, models.UTCDateTime
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("payload", JsonDocument, nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'processing', 'completed', 'failed')", name="status"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("type", "idempotency_key"),
    )
    op.create_index("ix_background_jobs_status_created_at", "background_jobs", ["status", "created_at"])
    op.create_index("ix_background_jobs_created_at", "background_jobs", ["created_at"])
    op.create_index("ix_background_jobs_status_updated_at", "background_jobs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_background_jobs_status_updated_at", table_name="background_jobs")
    op.drop_index("ix_background_jobs_created_at", table_name="background_jobs")
    op.drop_index("ix_background_jobs_status_created_at", table_name="background_jobs")
    op.drop_table("background_jobs")
