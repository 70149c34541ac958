"""Unique jobs while pending, and concurrency per key.

`unique_key`, and a partial unique index of (type, unique_key) over the jobs that have not started (pending
or scheduled). A second publish with the key of a job still waiting returns
that job (or, with on_conflict="replace", updates its payload and run_at: a debounce); once it has started,
the key is free again. Unlike idempotency keys, which name one job forever (db/uniqueness.py).

`concurrency_key`: at most N jobs of a type with the same key run at once (the handler's
`concurrency_per_key`); its partial index holds only the running ones, which the claim counts.

`rate_limiters`: one token bucket per named limiter (settings `rate_limits`), shared by every worker
(db/rate_limits.py).

Declared here only, as the other partial indexes are (db/models.py says why).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING_TO_START = sa.text("unique_key IS NOT NULL AND status IN ('pending', 'scheduled')")
_RUNNING_WITH_KEY = sa.text("concurrency_key IS NOT NULL AND status = 'processing'")


def upgrade() -> None:
    models = context.config.attributes["models"]  # the package's own, under either name
    op.create_table(
        "rate_limiters",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rate_limiters"),
    )
    with op.batch_alter_table("background_jobs") as batch:
        batch.add_column(sa.Column("unique_key", sa.String(255), nullable=True))
        batch.add_column(sa.Column("concurrency_key", sa.String(255), nullable=True))
    op.create_index(
        "ix_background_jobs_type_concurrency_key_running",
        "background_jobs",
        ["type", "concurrency_key"],
        postgresql_where=_RUNNING_WITH_KEY,
        sqlite_where=_RUNNING_WITH_KEY,
    )
    op.create_index(
        "uq_background_jobs_type_unique_key_pending",
        "background_jobs",
        ["type", "unique_key"],
        unique=True,
        postgresql_where=_WAITING_TO_START,
        sqlite_where=_WAITING_TO_START,
    )


def downgrade() -> None:
    op.drop_table("rate_limiters")
    op.drop_index("uq_background_jobs_type_unique_key_pending", table_name="background_jobs")
    op.drop_index("ix_background_jobs_type_concurrency_key_running", table_name="background_jobs")
    with op.batch_alter_table("background_jobs") as batch:
        batch.drop_column("concurrency_key")
        batch.drop_column("unique_key")
