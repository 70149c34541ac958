"""The publisher's trace context on the row.

`traceparent` (W3C Trace Context, 55 characters for version 00) is the span that published the job, if the
web app had one (db/trace_context.py). The message carries it as an attribute; the row keeps it so every
later send of the job (the sweeper's relay, a release, `jobstack retry`) links to the same trace.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("traceparent")
