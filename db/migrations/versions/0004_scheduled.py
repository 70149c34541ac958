"""Jobs that run later than SQS's 15-minute delay allows: a `scheduled` status and the time to run at.

A scheduled row has no message yet; the sweeper releases it (status `pending`, message sent with the rest of
the wait as SQS's DelaySeconds) once it is due within the release window. The (status, run_at) index serves
that query however many jobstack wait.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')"
_AFTER = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'scheduled')"


def upgrade() -> None:
    utc_datetime = context.config.attributes["models"].UTCDateTime  # the package's own, under either name
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _AFTER)
        batch.add_column(sa.Column("run_at", utc_datetime(), nullable=True))
    op.create_index("ix_background_jobs_status_run_at", "background_jobs", ["status", "run_at"])


def downgrade() -> None:
    # A job still waiting to run is released at once rather than lost: pending, its message sent by the sweeper.
    op.execute("UPDATE background_jobs SET status = 'pending' WHERE status = 'scheduled'")
    op.drop_index("ix_background_jobs_status_run_at", table_name="background_jobs")
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("run_at")
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _BEFORE)
