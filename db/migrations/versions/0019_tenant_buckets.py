"""A rate limiter's name holds a tenant's bucket: `LIMITER/TENANT` (db/claiming/tenant_gate.py), up to 64 + 1 +
128 characters, so `rate_limiters.name` widens from 64 to 200.

PostgreSQL changes the type in place (widening a varchar rewrites nothing). SQLite cannot alter a column's
type, so Alembic's batch mode copies the table; SQLite enforces no varchar length, but the declared schema
stays one on both databases (tests/db/test_migrations.py compares them), and the table holds one row per
limiter and tenant bucket, so the copy is small.

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


def upgrade() -> None:
    with op.batch_alter_table("rate_limiters") as batch:
        batch.alter_column("name", type_=sa.String(200), existing_type=sa.String(64), existing_nullable=False)


def downgrade() -> None:
    op.execute("DELETE FROM rate_limiters WHERE length(name) > 64")  # tenants' buckets: refilled when next used
    with op.batch_alter_table("rate_limiters") as batch:
        batch.alter_column("name", type_=sa.String(64), existing_type=sa.String(200), existing_nullable=False)
