"""What limits per tenant read, made cheap at a million jobs (bench/tenants_page.py):

- `rate_limiters.name` widens from 64 to 200: a tenant's own bucket is named `LIMITER/TENANT` (64 + 1 + 128
  characters; db/claiming/tenant_gate.py). PostgreSQL widens a varchar in place; SQLite cannot alter a column's
  type, so Alembic's batch mode copies the table, which holds one row per limiter and tenant bucket.
- migration 0018's index of every job with a tenant by (tenant, status) becomes two partial ones:
  - `ix_background_jobs_tenant_unfinished` (tenant, status) over the unfinished jobs only: what the tenants'
    counts, the claim's running count per tenant and the publish quota's backlog count read. Over the whole
    table it read 1,000,000 entries to count 186,000 (123 ms); over these alone 30 ms.
  - `ix_background_jobs_tenant_created` (tenant, created_at): one tenant's jobs newest first (the console's
    job list by tenant), which the unfinished-only index cannot serve for finished jobs.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The statuses of a job not finished: db/tenants.py's counts read these and nothing else.
UNFINISHED = "tenant IS NOT NULL AND status IN ('pending', 'scheduled', 'waiting', 'processing', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("rate_limiters") as batch:
        batch.alter_column("name", type_=sa.String(200), existing_type=sa.String(64), existing_nullable=False)
    for name, columns, where in (
        ("ix_background_jobs_tenant_unfinished", ["tenant", "status"], UNFINISHED),
        ("ix_background_jobs_tenant_created", ["tenant", "created_at"], "tenant IS NOT NULL"),
    ):
        op.create_index(name, "background_jobs", columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    op.drop_index("ix_background_jobs_tenant_status", table_name="background_jobs")


def downgrade() -> None:
    op.create_index(
        "ix_background_jobs_tenant_status",
        "background_jobs",
        ["tenant", "status"],
        postgresql_where=sa.text("tenant IS NOT NULL"),
        sqlite_where=sa.text("tenant IS NOT NULL"),
    )
    op.drop_index("ix_background_jobs_tenant_created", table_name="background_jobs")
    op.drop_index("ix_background_jobs_tenant_unfinished", table_name="background_jobs")
    op.execute("DELETE FROM rate_limiters WHERE length(name) > 64")  # tenants' buckets: refilled when next used
    with op.batch_alter_table("rate_limiters") as batch:
        batch.alter_column("name", type_=sa.String(64), existing_type=sa.String(200), existing_nullable=False)
