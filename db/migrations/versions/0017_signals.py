"""Jobs that wait for the world: a signal by key, or a time (db/waits.py).

`background_jobs.wait_key`: the signal a `waiting` job waits for (its `run_at` is the wait's timeout), and
`wait_result`: what ended its last wait (the signal's payload, or its timeout), which the resumed handler's
wait step reads once and journals. A partial index finds a key's waiters (`status = 'waiting'`).

`job_signals`: a signal sent to a key nobody waited for yet, kept (at most one per key, the first) until a
job waits for that key, which takes it, or until it expires.

The columns are added, and dropped by the downgrade, with a plain ALTER TABLE on both databases, never by
SQLite's batch mode (it copies the table: migration 0016 says what that loses).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    models = context.config.attributes["models"]  # the package's own, under either name
    op.add_column("background_jobs", sa.Column("wait_key", sa.String(255), nullable=True))
    op.add_column("background_jobs", sa.Column("wait_result", models.JsonDocument(none_as_null=True), nullable=True))
    op.create_index(
        "ix_background_jobs_wait_key",
        "background_jobs",
        ["wait_key"],
        postgresql_where=sa.text("status = 'waiting' AND wait_key IS NOT NULL"),
        sqlite_where=sa.text("status = 'waiting' AND wait_key IS NOT NULL"),
    )
    op.create_table(
        "job_signals",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", models.JsonDocument(none_as_null=True), nullable=True),
        sa.Column("created_at", models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_job_signals"),
    )


def downgrade() -> None:
    op.drop_table("job_signals")
    op.drop_index("ix_background_jobs_wait_key", table_name="background_jobs")
    for name in ("wait_result", "wait_key"):  # in place, never by copying (SQLite 3.35+: see above)
        op.execute(f"ALTER TABLE background_jobs DROP COLUMN {name}")
