"""Record when each job's message was last sent.

The sweeper used to re-send every old `pending` row on every run, so a backlogged queue multiplied its
messages. `sent_at` lets it send only what was never sent, or whose message must have left the queue.
Existing rows get NULL ("never confirmed"): a pending one is sent once more by the next sweep, a duplicate
the worker absorbs, rather than guessing that it was sent and risking a lost job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc_datetime = context.config.attributes["models"].UTCDateTime  # the package's own, under either name
    with op.batch_alter_table("background_jobs") as batch:  # batch: SQLite cannot add a CHECK in place
        batch.add_column(sa.Column("sent_at", utc_datetime(), nullable=True))
        batch.add_column(sa.Column("send_count", sa.Integer(), server_default="0", nullable=False))
        batch.create_check_constraint("send_count_not_negative", "send_count >= 0")


def downgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_constraint("send_count_not_negative", type_="check")
        batch.drop_column("send_count")
        batch.drop_column("sent_at")
