"""Cancelled jobs: a `cancelled` status, and when a running job was asked to stop.

A pending (or failed, waiting for its retry) job that is cancelled never runs: the worker acknowledges its
message without running it. A running job cannot be stopped from outside; `cancel_requested_at` asks its
handler to stop (`ctx.cancel_requested()`), and a job asked to stop is not retried if it fails.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "status IN ('pending', 'processing', 'completed', 'failed')"
_AFTER = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')"


def upgrade() -> None:
    utc_datetime = context.config.attributes["models"].UTCDateTime  # the package's own, under either name
    with op.batch_alter_table("background_jobs") as batch:  # batch: SQLite rebuilds the table for a CHECK
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _AFTER)
        batch.add_column(sa.Column("cancel_requested_at", utc_datetime(), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE background_jobs SET status = 'failed', error = 'cancelled' WHERE status = 'cancelled'")
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("cancel_requested_at")
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _BEFORE)
