"""The customer (tenant) a job is for: `background_jobs.tenant`, sent as a standard queue's MessageGroupId (SQS
fair queues keep one tenant's backlog from delaying the others'), and indexed with the status for what reads
tenants (their counts, their limits), partially: only jobs with a tenant.

Added, and dropped by the downgrade, with a plain ALTER TABLE on both databases (migration 0016 says why).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("background_jobs", sa.Column("tenant", sa.String(128), nullable=True))
    op.create_index(
        "ix_background_jobs_tenant_status",
        "background_jobs",
        ["tenant", "status"],
        postgresql_where=sa.text("tenant IS NOT NULL"),
        sqlite_where=sa.text("tenant IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_background_jobs_tenant_status", table_name="background_jobs")
    op.execute("ALTER TABLE background_jobs DROP COLUMN tenant")  # in place, never by copying (SQLite 3.35+)
