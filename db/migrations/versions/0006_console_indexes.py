"""Indexes for the operators' console (`jobstack console`): its job list filters by type, and by idempotency key,
newest first. Without them, a filter on a rare type or on one key walks the whole created_at index of a
table of millions of rows; with them each page reads its own rows only. The key's index is partial (most
jobs have no key), so publishes without a key pay nothing for it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_KEY = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_background_jobs_type_created_at", "background_jobs", ["type", "created_at"])
    op.create_index(
        "ix_background_jobs_idempotency_key",
        "background_jobs",
        ["idempotency_key"],
        postgresql_where=_HAS_KEY,
        sqlite_where=_HAS_KEY,
    )


def downgrade() -> None:
    op.drop_index("ix_background_jobs_idempotency_key", table_name="background_jobs")
    op.drop_index("ix_background_jobs_type_created_at", table_name="background_jobs")
